import { SafetensorsFile } from "../io/safetensors.ts";
import type { Engine } from "../kernels/engine.ts";
import { PackedMatrix, type WeightDtype } from "../kernels/packed-matrix.ts";
import type { ByteSource } from "../io/byte-source.ts";
import { firstNonFinite } from "../tensor/finite.ts";
import { Tensor, shapeSize } from "../tensor/tensor.ts";
import { Random } from "../util/random.ts";
import type { GPT2Config } from "./config.ts";
import { GPT2Model } from "./model.ts";
import { type GPT2Params, assembleParams, isLinearWeight, parameterShapes } from "./params.ts";

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
    const missing = (stored: string) => new Error(`${file.path}: tensor "${stored}" is missing (config.json asks for ${config.nLayer} layers)`);
    // Layer by layer before the parameters are listed: a config asking for a billion layers is
    // refused at the first layer the file lacks, not after building a billion-entry list.
    for (let i = 0; i < config.nLayer; i++) if (!file.tensors.has(`${prefix}h.${i}.ln_1.weight`)) throw missing(`${prefix}h.${i}.ln_1.weight`);
    const names = parameterShapes(config).map(([name, shape]): [string, string, number[]] => {
      const stored = prefix + name;
      const info = file.tensors.get(stored);
      if (info === undefined) throw missing(stored);
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

/** Fills `into` with elements first … first+into.length−1 of parameter `name` (in storage order). */
type ReadParameter = (name: string, into: Float32Array, first: number) => Promise<void> | void;

/**
 * Every parameter of `config` read by `read` and placed where the engine's kernels read it.
 * Conv1D weights pass through one reused buffer on their way to being packed, and wte is read a
 * few thousand rows at a time, so no row-major copy outlives its packing; the kernels' memory is
 * grown once, up front.
 */
async function placeParameters(engine: Engine, config: GPT2Config, read: ReadParameter): Promise<GPT2Params> {
  const shapes = parameterShapes(config);
  const linear = shapes.filter(([name]) => isLinearWeight(name));
  engine.reserveWeights([...linear.map(([, shape]) => shape), [config.nEmbd, config.vocabSize]]);
  const scratch = new Float32Array(Math.max(0, ...linear.map(([, shape]) => shapeSize(shape))));
  const placed = new Map<string, Tensor | PackedMatrix>();
  for (const [name, shape] of shapes) {
    const size = shapeSize(shape);
    if (name === "wte.weight") {
      const [vocab, d] = shape;
      const head = engine.allocHead(vocab, d);
      const rows = new Float32Array(Math.min(vocab, HEAD_ROWS) * d);
      for (let first = 0; first < vocab; first += HEAD_ROWS) {
        const part = rows.subarray(0, Math.min(HEAD_ROWS, vocab - first) * d);
        await read(name, part, first * d);
        head.setTransposedRows(first, part);
      }
      placed.set(name, head);
    } else if (isLinearWeight(name)) {
      const t = new Tensor(scratch.subarray(0, size), shape);
      await read(name, t.data, 0);
      const weight = engine.prepareWeight(t);
      // Kernels that read the checkpoint's own layout keep the tensor: take it out of the scratch.
      placed.set(name, weight === t ? new Tensor(t.data.slice(), shape) : weight);
    } else {
      const t = new Tensor(engine.allocWeight(size), shape);
      await read(name, t.data, 0);
      placed.set(name, t);
    }
  }
  return assembleParams(config.nLayer, (n) => placed.get(n)!);
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
    const stored = new Map(names.map(([name, inFile]) => [name, inFile]));
    const params = await placeParameters(engine, config, async (name, into, first) => {
      await file.read(stored.get(name)!, into, first, into.length);
      // Checked as it is placed (one pass, no copy): a NaN or ∞ weight would turn every logit NaN.
      const at = firstNonFinite(into);
      if (at >= 0) throw new Error(`${file.path}: tensor "${stored.get(name)}" holds ${into[at]} at element ${first + at}: the file is damaged`);
    });
    return { model: new GPT2Model(config, params, { kind: "file", path: file.path }, engine), bytesRead: file.bytesRead };
  } catch (err) {
    await engine.dispose();
    throw err;
  } finally {
    await file.close();
  }
}

/**
 * A model of the given shape whose passes only count (an Engine with countsOnly): its matmul
 * weights are valueless `dtype` matrices and its other parameters zeros, so a pass of GPT-2 XL
 * reports every op's cycles and bytes without its 6 GB of weights.
 */
export function countingModel(engine: Engine, config: GPT2Config, dtype: WeightDtype): GPT2Model {
  if (!engine.countsOnly) throw new Error("countingModel: the engine must only count (countsOnly)");
  const placed = new Map<string, Tensor | PackedMatrix>();
  for (const [name, shape] of parameterShapes(config)) {
    if (name === "wte.weight") placed.set(name, PackedMatrix.valueless(shape[1], shape[0], dtype));
    else if (isLinearWeight(name)) placed.set(name, PackedMatrix.valueless(shape[0], shape[1], dtype));
    else placed.set(name, new Tensor(new Float32Array(shapeSize(shape)), shape));
  }
  return new GPT2Model(config, assembleParams(config.nLayer, (n) => placed.get(n)!), { kind: "random", seed: 0 }, engine);
}

/**
 * A model of the given shape with deterministic random weights on `engine` (which it then owns):
 * uniform, with GPT-2's init scale (std 0.02), layer norms at γ = 1, β = 0. Its text is noise;
 * its cycles and timings are real. The generator runs through the parameters in checkpoint
 * order, as a file would be read.
 */
export async function randomModel(engine: Engine, config: GPT2Config, seed = 1234): Promise<GPT2Model> {
  const rng = new Random(seed);
  const halfWidth = 0.02 * Math.sqrt(3); // uniform on ±a has std a/√3
  const params = await placeParameters(engine, config, (name, into) => {
    if (/ln_\w+\.weight$/.test(name)) into.fill(1);
    else if (name.endsWith(".bias")) into.fill(0);
    else rng.fillUniform(into, halfWidth);
  });
  return new GPT2Model(config, params, { kind: "random", seed }, engine);
}
