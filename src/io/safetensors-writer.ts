import { closeSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { floatToBfloat16 } from "./half.ts";
import type { Dtype } from "./safetensors.ts";

export interface TensorToWrite {
  name: string;
  shape: number[];
  data: Float32Array;
  /** Stored dtype (default F32). F16 is not written here; the fixture script makes those. */
  dtype?: Exclude<Dtype, "F16">;
}

/**
 * Writes a safetensors file: header keys in name order, data in the order given. Writes to
 * `<path>.tmp` and renames, so `path` never holds a half-written file.
 */
export function writeSafetensors(path: string, tensors: TensorToWrite[], metadata: Record<string, string> = { format: "pt" }): void {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  const placed = tensors.map((t) => {
    const bytes = t.data.length * (t.dtype === "BF16" ? 2 : 4);
    const entry = { dtype: t.dtype ?? "F32", shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
    return [t.name, entry] as const;
  });
  for (const [name, entry] of [...placed].sort((a, b) => (a[0] < b[0] ? -1 : 1))) header[name] = entry;
  const json = Buffer.from(JSON.stringify(header), "utf8");
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  const tmp = `${path}.tmp`;
  try {
    const fd = openSync(tmp, "w");
    try {
      writeSync(fd, length);
      writeSync(fd, json);
      for (const t of tensors) writeSync(fd, storedBytes(t));
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

function storedBytes(t: TensorToWrite): Uint8Array {
  if (t.dtype !== "BF16") return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const halves = new Uint16Array(t.data.length);
  for (let i = 0; i < halves.length; i++) halves[i] = floatToBfloat16(t.data[i]);
  return new Uint8Array(halves.buffer);
}
