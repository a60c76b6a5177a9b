import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { Engine } from "../kernels/engine.ts";
import { type GPT2Config, parseConfig } from "../model/config.ts";
import { loadCheckpoint, openCheckpoint } from "../model/load.ts";
import type { GPT2Model } from "../model/model.ts";
import { fileSource, nodePlatform } from "../platform/node.ts";

/*
 * A model directory on disk in the Hugging Face layout: config.json + model.safetensors (and,
 * optionally, the tokenizer's files).
 */

/** Reads config.json of a model directory. */
export function loadConfig(dir: string): GPT2Config {
  if (!existsSync(dir)) throw new Error(`model directory ${dir} does not exist`);
  if (!statSync(dir).isDirectory()) throw new Error(`${dir} is a file, not a model directory: pass the directory that holds config.json and model.safetensors`);
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

async function weightsSource(dir: string) {
  const path = join(dir, "model.safetensors");
  if (!existsSync(path)) throw new Error(`${path}: not found (a model directory needs config.json and model.safetensors)`);
  return fileSource(path);
}

/** Checks that a directory would load (config, every tensor present and shaped) without reading tensor data. */
export async function checkModelDir(dir: string): Promise<GPT2Config> {
  const config = loadConfig(dir);
  const { file } = await openCheckpoint(config, await weightsSource(dir));
  await file.close();
  return config;
}

/** loadModel, also returning how many tensor bytes were read from the file. */
export async function loadModelFrom(dir: string, engine: Engine = new Engine(nodePlatform)): Promise<{ model: GPT2Model; bytesRead: number }> {
  const config = loadConfig(dir);
  return loadCheckpoint(engine, config, await weightsSource(dir));
}

/** Loads a GPT-2 from a model directory onto `engine` (by default: every core, the fastest kernels). */
export async function loadModel(dir: string, engine?: Engine): Promise<GPT2Model> {
  return (await loadModelFrom(dir, engine)).model;
}
