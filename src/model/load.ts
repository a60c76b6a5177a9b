import { SafetensorsFile } from "../io/safetensors.ts";
import type { Engine } from "../kernels/engine.ts";
import type { PackedMatrix } from "../kernels/packed-matrix.ts";
import type { ByteSource } from "../platform/platform.ts";
import { Tensor, shapeSize } from "../tensor/tensor.ts";
import { Random } from "../util/random.ts";
import type { GPT2Config } from "./config.ts";
import { GPT2Model } from "./model.ts";
import { assembleParams, isLinearWeight, parameterShapes } from "./params.ts";

/** wte rows read and packed at a time: no row-major copy of the 154 MB embedding is ever whole. */
const HEAD_ROWS = 4096;

/** An opened checkpoint whose every parameter is there with the config's shape (no tensor data read yet). */
export interface Checkpoint {
  config: GPT2Config;
  file: SafetensorsFile;
  /** Parameter name, name stored in the file (GPT2LMHeadModel prefixes "transformer."), shape. */
  names: [string, string, number[]][];
}

/** Opens model.safetensors from any source and checks it against config.json; closes it again if it does not fit. */
export async function openCheckpoint(config: GPT2Config, source: ByteSource): Promise<Checkpoint> {
  const file = await SafetensorsFile.open(source);
  try {
    const prefix = file.tensors.has("transformer.wte.weight") ? "transformer." : "";
    const names = parameterShapes(config).map(([name, shape]): [string, string, number[]] => {
      const stored = prefix + name;
      const info = file.tensors.get(stored);
      if (info === undefined) throw new Error(`${file.path}: tensor "${stored}" is missing (config.json asks for ${config.nLayer} layers)`);
      if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
        throw new Error(`${file.path}: tensor "${stored}" has shape [${info.shape.join(",")}] but config.json implies [${shape.join(",")}]`);
      }
      return [name, stored, shape];
    });
    return { config, file, names };
  } catch (err) {
    await file.close();
    throw err;
  }
}

/**
 * Loads a GPT-2 onto `engine` (which the model then owns) from a checkpoint in the Hugging Face
 * layout. Tensors are read one at a time straight into their places; buffers that are not
 * parameters (the attn.bias causal masks) are never read. A failure part-way gives the engine's
 * memory back, so nothing is left half-loaded.
 */
export async function loadCheckpoint(engine: Engine, config: GPT2Config, source: ByteSource): Promise<{ model: GPT2Model; bytesRead: number }> {
  const { file, names } = await openCheckpoint(config, source);
  try {
    const loaded = new Map<string, Tensor | PackedMatrix>();
    // Conv1D weights pass through one reused buffer on their way to being packed, and wte is read
    // a few thousand rows at a time, so no row-major copy outlives its packing.
    const scratch = new Float32Array(Math.max(0, ...names.filter(([name]) => isLinearWeight(name)).map(([, , shape]) => shapeSize(shape))));
    for (const [name, stored, shape] of names) {
      const size = shapeSize(shape);
      if (name === "wte.weight") {
        const [vocab, d] = shape;
        const head = engine.allocHead(vocab, d);
        const rows = new Float32Array(Math.min(vocab, HEAD_ROWS) * d);
        for (let first = 0; first < vocab; first += HEAD_ROWS) {
          const part = rows.subarray(0, Math.min(HEAD_ROWS, vocab - first) * d);
          head.setTransposedRows(first, await file.read(stored, part, first * d, part.length));
        }
        loaded.set(name, head);
      } else if (isLinearWeight(name)) {
        const t = new Tensor(await file.read(stored, scratch.subarray(0, size)), shape);
        const placed = engine.prepareWeight(t);
        // Kernels that read the checkpoint's own layout keep the tensor: take it out of the scratch.
        loaded.set(name, placed === t ? new Tensor(t.data.slice(), shape) : placed);
      } else {
        loaded.set(name, new Tensor(await file.read(stored, engine.allocWeight(size)), shape));
      }
    }
    const model = new GPT2Model(config, assembleParams(config.nLayer, (n) => loaded.get(n)!), { kind: "file", path: file.path }, engine);
    return { model, bytesRead: file.bytesRead };
  } catch (err) {
    await engine.dispose();
    throw err;
  } finally {
    await file.close();
  }
}

/**
 * A model of the given shape with deterministic random weights on `engine` (which it then owns):
 * uniform, with GPT-2's init scale (std 0.02), layer norms at γ = 1, β = 0. Its text is noise;
 * its cycles and timings are real.
 */
export function randomModel(engine: Engine, config: GPT2Config, seed = 1234): GPT2Model {
  const rng = new Random(seed);
  const halfWidth = 0.02 * Math.sqrt(3); // uniform on ±a has std a/√3
  const shapes = new Map(parameterShapes(config));
  const fill = (t: Tensor, name: string): Tensor => {
    if (/ln_\w+\.weight$/.test(name)) t.data.fill(1);
    else if (!name.endsWith(".bias")) rng.fillUniform(t.data, halfWidth);
    return t;
  };
  const params = assembleParams(config.nLayer, (name) => {
    const shape = shapes.get(name)!;
    if (name === "wte.weight") {
      const head = engine.allocHead(shape[0], shape[1]);
      head.setTransposedRows(0, fill(Tensor.zeros(shape), name).data);
      return head;
    }
    if (isLinearWeight(name)) return engine.prepareWeight(fill(Tensor.zeros(shape), name));
    return fill(new Tensor(engine.allocWeight(shapeSize(shape)), shape), name);
  });
  return new GPT2Model(config, params, { kind: "random", seed }, engine);
}
