/** A mistake in how the command was called: reported as one line, exit code 2, no stack trace. */
export class UsageError extends Error {}

/** "optional": a flag alone (true) or with a value (a string): `--random-weights [NAME]`. */
export type FlagKind = "boolean" | "optional" | "string" | "int" | "number";

export interface FlagSpec {
  kind: FlagKind;
  /** Shown in --help after the flag, e.g. "N" or "TEXT". */
  value?: string;
  help: string;
}

export type ParsedFlags = Record<string, string | number | boolean>;

/**
 * Parses `--flag value`, `--flag=value` and boolean `--flag`. Unknown flags, missing values
 * and non-numbers where numbers go are UsageErrors that name the flag.
 */
export function parseFlags(argv: readonly string[], specs: Record<string, FlagSpec>): ParsedFlags {
  const out: ParsedFlags = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("--")) throw new UsageError(`unexpected argument "${arg}": flags start with -- (see --help)`);
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const spec = specs[name];
    if (spec === undefined) throw new UsageError(`unknown flag --${name} (see --help for the list)`);
    if (spec.kind === "boolean") {
      if (eq >= 0) throw new UsageError(`--${name} takes no value`);
      out[name] = true;
      continue;
    }
    if (spec.kind === "optional") {
      const next = argv[i + 1];
      out[name] = eq >= 0 ? arg.slice(eq + 1) : next !== undefined && !next.startsWith("--") ? argv[++i] : true;
      continue;
    }
    let raw: string;
    if (eq >= 0) raw = arg.slice(eq + 1);
    else {
      // A following known flag means the value was forgotten (a value that looks like a flag can use --name=value).
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith("--") && next.slice(2).split("=")[0] in specs)) {
        throw new UsageError(`--${name} needs a value: --${name} ${spec.value ?? "VALUE"}`);
      }
      raw = argv[++i];
    }
    out[name] = spec.kind === "string" ? raw : toNumber(name, raw, spec.kind);
  }
  return out;
}

/** Decimal notation only: Number() would also take "0x10", "0b1", " 16 " and "Infinity". */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

function toNumber(name: string, raw: string, kind: "int" | "number"): number {
  const v = DECIMAL.test(raw) ? Number(raw) : NaN;
  if (!Number.isFinite(v)) throw new UsageError(`--${name} expects a number, got "${raw}"`);
  if (kind === "int" && !Number.isSafeInteger(v)) throw new UsageError(`--${name} expects a whole number, got "${raw}"`);
  return v;
}

/** The flag list for --help, aligned. */
export function flagHelp(specs: Record<string, FlagSpec>): string {
  const rows = Object.entries(specs).map(([name, s]) => [`--${name}${s.value ? (s.kind === "optional" ? ` [${s.value}]` : ` ${s.value}`) : ""}`, s.help]);
  const width = Math.max(...rows.map(([f]) => f.length));
  return rows.map(([f, h]) => `  ${f.padEnd(width)}  ${h}`).join("\n");
}
