// Peak memory of loading GPT-2 small and running one forward pass.
//
//   npx tsx bench/memory.ts
//
// Writes a checkpoint of GPT-2 small's exact shapes (random weights, attn.bias buffers included,
// like the real file) to a temporary directory, then loads it and runs a 16-token forward pass
// in a fresh process, so the figure is that process's own peak RSS. The target: peak RSS ≤
// parameter bytes + 300 MB — the file and the tensors are never held at once.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Engine, GPT2_SMALL, loadModel, nodePlatform, randomModel, writeSafetensors } from "../src/node.ts";
import { namedParameters } from "../src/model/params.ts";

const MB = 1024 * 1024;

async function child(dir: string): Promise<void> {
  const model = await loadModel(dir);
  model.forward(Array.from({ length: 16 }, (_, i) => i * 1000));
  process.stdout.write(JSON.stringify({ peakRssBytes: nodePlatform.peakMemoryBytes() }));
}

async function parent(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "gpt2-small-shapes-"));
  try {
    const c = GPT2_SMALL;
    const mask = new Float32Array(c.nPositions * c.nPositions);
    for (let i = 0; i < c.nPositions; i++) mask.fill(1, i * c.nPositions, i * c.nPositions + i + 1);
    // The checkpoint's own layout: nothing to unpack for writing.
    const params = namedParameters((await randomModel(new Engine(nodePlatform, { kernel: "ikj", threads: 1 }), c, 7)).params);
    const tensors = [
      ...params.map(([name, t]) => ({ name, shape: [...t.shape], data: t.data })),
      ...Array.from({ length: c.nLayer }, (_, i) => ({ name: `h.${i}.attn.bias`, shape: [1, 1, c.nPositions, c.nPositions], data: mask })),
    ];
    writeFileSync(join(dir, "config.json"), JSON.stringify({ n_layer: c.nLayer, n_head: c.nHead, n_embd: c.nEmbd, n_positions: c.nPositions, vocab_size: c.vocabSize }));
    writeSafetensors(join(dir, "model.safetensors"), tensors);
    const paramBytes = params.reduce((sum, [, t]) => sum + t.data.byteLength, 0);
    const out = execFileSync(process.execPath, [...process.execArgv, process.argv[1], "--child", dir], { encoding: "utf8" });
    const { peakRssBytes } = JSON.parse(out) as { peakRssBytes: number };
    const budget = paramBytes + 300 * MB;
    console.log(`GPT-2 small shapes: parameters ${(paramBytes / MB).toFixed(0)} MiB; load + 16-token forward peak RSS ${(peakRssBytes / MB).toFixed(0)} MiB`);
    console.log(`budget (parameters + 300 MiB) ${(budget / MB).toFixed(0)} MiB: ${peakRssBytes <= budget ? "within" : "OVER"} (headroom ${((budget - peakRssBytes) / MB).toFixed(0)} MiB)`);
    if (peakRssBytes > budget) process.exitCode = 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === "--child") await child(process.argv[3]);
else await parent();
