import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { SafetensorsFile } from "../io/safetensors.ts";
import { allocWeight, prepareHead, prepareWeight } from "../kernels/engine.ts";
import type { PackedMatrix } from "../kernels/packed-matrix.ts";
import { Tensor, shapeSize } from "../tensor/tensor.ts";
import { Random } from "../util/random.ts";
import { type GPT2Config, parseConfig } from "./config.ts";
import { GPT2Model } from "./model.ts";
import { assembleParams, isLinearWeight, parameterShapes } from "./params.ts";

/** Reads config.json of a model directory in the Hugging Face layout. */
export function loadConfig(dir: string): GPT2Config {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`model directory ${dir} does not exist`);
  const path = join(dir, "config.json");
  if (!existsSync(path)) throw new Error(`${path}: not found (a model directory needs config.json and model.safetensors)`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch {
    throw new Error(`${path}: not valid JSON`);
  }
  return parseConfig(json, path);
}

/** Opens a model directory's checkpoint and checks every parameter is there with the config's shape. */
function openCheckpoint(dir: string): { config: GPT2Config; file: SafetensorsFile; names: [string, string, number[]][] } {
  const config = loadConfig(dir);
  const path = join(dir, "model.safetensors");
  if (!existsSync(path)) throw new Error(`${path}: not found (a model directory needs config.json and model.safetensors)`);
  const file = SafetensorsFile.open(path);
  try {
    const prefix = file.tensors.has("transformer.wte.weight") ? "transformer." : "";
    const names = parameterShapes(config).map(([name, shape]): [string, string, number[]] => {
      const stored = prefix + name;
      const info = file.tensors.get(stored);
      if (info === undefined) throw new Error(`${path}: tensor "${stored}" is missing (config.json asks for ${config.nLayer} layers)`);
      if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
        throw new Error(`${path}: tensor "${stored}" has shape [${info.shape.join(",")}] but config.json implies [${shape.join(",")}]`);
      }
      return [name, stored, shape];
    });
    return { config, file, names };
  } catch (err) {
    file.close();
    throw err;
  }
}

/** Checks that a directory would load (config, every tensor present and shaped) without reading tensor data. */
export function checkModelDir(dir: string): GPT2Config {
  const { config, file } = openCheckpoint(dir);
  file.close();
  return config;
}

/**
 * Loads a GPT-2 from a directory in the Hugging Face layout (config.json + model.safetensors).
 * Tensors are read one at a time straight into their Float32Arrays; buffers that are not
 * parameters (the attn.bias causal masks) are never read.
 */
export async function loadModel(dir: string): Promise<GPT2Model> {
  return loadModelFrom(dir).model;
}

/** loadModel, also returning how many tensor bytes were read from the file. */
export function loadModelFrom(dir: string): { model: GPT2Model; bytesRead: number } {
  const { config, file, names } = openCheckpoint(dir);
  try {
    const loaded = new Map<string, Tensor | PackedMatrix>();
    // Conv1D weights pass through one reused buffer on their way to being packed, and wte is read
    // a few thousand rows at a time, so no row-major copy outlives its packing.
    const scratch = new Float32Array(Math.max(0, ...names.filter(([name]) => isLinearWeight(name)).map(([, , shape]) => shapeSize(shape))));
    for (const [name, stored, shape] of names) {
      const size = shapeSize(shape);
      if (name === "wte.weight") {
        loaded.set(name, prepareHead(shape[0], shape[1], (first, into) => file.read(stored, into, first * shape[1], into.length)));
      } else if (isLinearWeight(name)) {
        const t = new Tensor(file.read(stored, scratch.subarray(0, size)), shape);
        const placed = prepareWeight(t);
        // Kernels that read the checkpoint's own layout keep the tensor: take it out of the scratch.
        loaded.set(name, placed === t ? new Tensor(t.data.slice(), shape) : placed);
      } else {
        loaded.set(name, new Tensor(file.read(stored, allocWeight(size)), shape));
      }
    }
    const model = new GPT2Model(config, assembleParams(config.nLayer, (n) => loaded.get(n)!), { kind: "file", path: file.path });
    return { model, bytesRead: file.bytesRead };
  } finally {
    file.close();
  }
}

/**
 * A model of the given shape with deterministic random weights: uniform, with GPT-2's init
 * scale (std 0.02), layer norms at γ = 1, β = 0. Its text is noise; its cycles and timings are real.
 */
export function randomModel(config: GPT2Config, seed = 1234): GPT2Model {
  const rng = new Random(seed);
  const halfWidth = 0.02 * Math.sqrt(3); // uniform on ±a has std a/√3
  const shapes = new Map(parameterShapes(config));
  const fill = (t: Tensor, name: string): Tensor => {
    if (/ln_\w+\.weight$/.test(name)) t.data.fill(1);
    else if (!name.endsWith(".bias")) for (let i = 0; i < t.size; i++) t.data[i] = (2 * rng.next() - 1) * halfWidth;
    return t;
  };
  const params = assembleParams(config.nLayer, (name) => {
    const shape = shapes.get(name)!;
    if (name === "wte.weight") {
      const wte = fill(Tensor.zeros(shape), name);
      return prepareHead(shape[0], shape[1], (first, into) => into.set(wte.data.subarray(first * shape[1], first * shape[1] + into.length)));
    }
    if (isLinearWeight(name)) return prepareWeight(fill(Tensor.zeros(shape), name));
    return fill(new Tensor(allocWeight(shapeSize(shape)), shape), name);
  });
  return new GPT2Model(config, params, { kind: "random", seed });
}
