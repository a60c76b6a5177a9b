import type { ByteSource } from "./byte-source.ts";
import { halfToFloat, bfloat16ToFloat } from "./half.ts";

/*
 * The safetensors format: an 8-byte little-endian header length N, N bytes of JSON
 * ({ name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__"?: {…} }), then the
 * data section; offsets are relative to its start. We read tensor by tensor through a ByteSource
 * (a file on disk, an HTTP Range request, a File in a page), so a file never sits in memory whole,
 * offsets past 4 GiB work, and every check below applies to every source.
 */

export type Dtype = "F32" | "F16" | "BF16";

const DTYPE_BYTES: Record<Dtype, number> = { F32: 4, F16: 2, BF16: 2 };

/** Dtypes the format defines that we do not load; named so the error can say so. */
const OTHER_DTYPES = new Set(["F64", "F8_E4M3", "F8_E5M2", "I64", "I32", "I16", "I8", "U64", "U32", "U16", "U8", "BOOL"]);

export interface TensorInfo {
  name: string;
  dtype: Dtype;
  shape: number[];
  /** Absolute byte offsets in the file. */
  begin: number;
  end: number;
}

export class SafetensorsFile {
  readonly tensors = new Map<string, TensorInfo>();
  readonly metadata: Record<string, string> = {};
  readonly headerLength: number;
  readonly fileSize: number;
  /** The source's name: what every message names. */
  readonly path: string;
  /** Tensor bytes read so far: lets callers (and tests) see that skipped tensors cost nothing. */
  bytesRead = 0;

  private constructor(private readonly source: ByteSource, lengthBytes: Uint8Array, headerBytes: Uint8Array | null) {
    this.path = source.name;
    this.fileSize = source.size;
    const path = this.path;
    const fail = (what: string): never => {
      throw new Error(`${path}: ${what}`);
    };
    if (this.fileSize < 8) fail(`not a safetensors file: ${this.fileSize} bytes, shorter than the 8-byte header length`);
    const exactLength = new DataView(lengthBytes.buffer, lengthBytes.byteOffset, 8).getBigUint64(0, true);
    const headerLength = Number(exactLength);
    if (headerBytes === null || 8 + headerLength > this.fileSize) {
      // The length as stored (a bigint prints every digit; 2^64 − 1 as a number would not).
      fail(`header length ${exactLength} runs past the end of the file (${this.fileSize} bytes): truncated or not safetensors`);
    }
    this.headerLength = headerLength;
    // As the format's reference reader: the JSON starts at once ("{"), no byte-order mark or space.
    if (headerBytes![0] !== 0x7b) fail(`header does not start with "{" (a byte-order mark or padding before it?): corrupt or not safetensors`);
    let header: unknown;
    try {
      header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(headerBytes!));
    } catch {
      fail(`header is not valid JSON: corrupt or not safetensors`);
    }
    if (header === null || typeof header !== "object" || Array.isArray(header)) fail("header is not a JSON object");
    const dataStart = 8 + headerLength;
    const dataLength = this.fileSize - dataStart;
    for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
      if (name === "__metadata__") {
        if (raw === null || typeof raw !== "object" || Array.isArray(raw) || !Object.values(raw).every((v) => typeof v === "string")) {
          fail(`"__metadata__" is not a map of strings`);
        }
        Object.assign(this.metadata, raw);
        continue;
      }
      const bad = (what: string): never => fail(`tensor "${name}": ${what}`);
      const entry = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (typeof entry !== "object" || entry === null) bad("header entry is not an object");
      const { dtype, shape, data_offsets: offsets } = entry;
      if (typeof dtype !== "string" || !Object.hasOwn(DTYPE_BYTES, dtype)) {
        bad(OTHER_DTYPES.has(String(dtype)) ? `dtype ${dtype} is not supported (F32, F16, BF16 are)` : `unknown dtype ${JSON.stringify(dtype)}`);
      }
      if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) bad(`shape ${JSON.stringify(shape)} is not a list of sizes`);
      if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
        bad(`data_offsets ${JSON.stringify(offsets)} is not [begin, end]`);
      }
      const [begin, end] = offsets as number[];
      if (begin > end || end > dataLength) bad(`data_offsets [${begin}, ${end}] fall outside the data section (${dataLength} bytes)`);
      const elements = (shape as number[]).reduce((a, b) => a * b, 1);
      const expected = elements * DTYPE_BYTES[dtype as Dtype];
      if (end - begin !== expected) bad(`holds ${end - begin} bytes but shape [${(shape as number[]).join(",")}] of ${dtype} needs ${expected}`);
      this.tensors.set(name, { name, dtype: dtype as Dtype, shape: shape as number[], begin: dataStart + begin, end: dataStart + end });
    }
    // The tensors tile the data section exactly, as the format requires: no overlap, no gap, no
    // tail. (A header length one byte short still parses, its last byte being padding, and then
    // every tensor would be read one byte off: the tail gives it away.) Zero-size tensors take none.
    const byOffset = [...this.tensors.values()].sort((a, b) => a.begin - b.begin || a.end - b.end);
    let covered = dataStart;
    let last = "";
    for (const t of byOffset) {
      if (t.begin < covered) fail(`tensors "${last}" and "${t.name}" overlap in the data section`);
      if (t.begin > covered) fail(`bytes ${covered - dataStart}..${t.begin - dataStart} of the data section belong to no tensor (before "${t.name}")`);
      if (t.end > t.begin) {
        covered = t.end;
        last = t.name;
      }
    }
    if (covered < this.fileSize) fail(`${this.fileSize - covered} bytes after the last tensor belong to none: truncated header length or trailing data`);
  }

  /** Reads and checks the header; the source is closed again if it is not a valid file. */
  static async open(source: ByteSource): Promise<SafetensorsFile> {
    try {
      const lengthBytes = source.size >= 8 ? await source.read(0, 8) : new Uint8Array(8);
      const headerLength = Number(new DataView(lengthBytes.buffer, lengthBytes.byteOffset, 8).getBigUint64(0, true));
      const fits = source.size >= 8 && 8 + headerLength <= source.size;
      return new SafetensorsFile(source, lengthBytes, fits ? await source.read(8, headerLength) : null);
    } catch (err) {
      await source.close();
      throw err;
    }
  }

  /**
   * Reads one tensor — or `count` of its elements from `first` on, in storage order — as float32
   * into `target` (allocated if absent), converting F16/BF16.
   */
  async read(name: string, target?: Float32Array, first = 0, count?: number): Promise<Float32Array> {
    const info = this.tensors.get(name);
    if (info === undefined) throw new Error(`${this.path}: no tensor "${name}"`);
    const total = info.shape.reduce((a, b) => a * b, 1);
    const elements = count ?? total - first;
    if (first < 0 || first + elements > total) throw new Error(`${this.path}: tensor "${name}" has ${total} elements, not ${first}..${first + elements}`);
    const out = target ?? new Float32Array(elements);
    if (out.length !== elements) throw new Error(`${this.path}: tensor "${name}": reading ${elements} elements into room for ${out.length}`);
    const bytesPer = DTYPE_BYTES[info.dtype];
    const position = info.begin + first * bytesPer;
    const bytes = await this.source.read(position, elements * bytesPer);
    this.bytesRead += bytes.length;
    if (info.dtype === "F32") {
      new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(bytes);
      return out;
    }
    const halves = new Uint16Array(bytes.buffer, bytes.byteOffset, elements);
    const convert = info.dtype === "F16" ? halfToFloat : bfloat16ToFloat;
    for (let i = 0; i < elements; i++) out[i] = convert(halves[i]);
    return out;
  }

  close(): Promise<void> {
    return this.source.close();
  }
}
