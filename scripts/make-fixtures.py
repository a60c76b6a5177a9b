#!/usr/bin/env python3
"""Writes the small GPT-2 fixtures under test/fixtures/ and their PyTorch reference outputs.

Each fixture is a model directory in the exact Hugging Face layout of openai-community/gpt2
(config.json + model.safetensors, tensor names as in that file, attn.bias causal-mask buffers
included), written by the hand-rolled safetensors writer below. The reference is an independent
float64 PyTorch implementation of GPT2LMHeadModel's semantics (tanh GELU, pre-LN blocks,
masked softmax through the attn.bias buffer, LM head tied to wte), recomputing the whole
sequence for every greedy step -- no KV cache -- so it shares no logic with the TypeScript model.

Like the real 548,105,171-byte checkpoint, every file here has a header whose length N leaves
the data section at an offset that is not a multiple of 4 (8 + N is odd), and stores tensor
data in an order that is not name order.

Run:  apt-get install -y python3-torch && /usr/bin/python3 scripts/make-fixtures.py
"""
import json
import math
import os
import struct

import torch
import torch.nn.functional as F

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures")

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}


def tensor_bytes(t, dtype):
    t = t.to(DTYPES[dtype]).contiguous()
    if dtype == "BF16":
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def write_safetensors(path, tensors, dtype, seed):
    """tensors: name -> tensor. Header keys in name order, data in a seeded shuffled order."""
    names = sorted(tensors)
    perm = torch.randperm(len(names), generator=torch.Generator().manual_seed(seed)).tolist()
    offsets, blobs, at = {}, [], 0
    for name in (names[i] for i in perm):
        blob = tensor_bytes(tensors[name], dtype)
        offsets[name] = [at, at + len(blob)]
        at += len(blob)
        blobs.append(blob)
    header = {"__metadata__": {"format": "pt"}}
    for name in names:
        header[name] = {"dtype": dtype, "shape": list(tensors[name].shape), "data_offsets": offsets[name]}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((3 - len(text)) % 4)  # N % 4 == 3, as in the real file (N = 14,283)
    assert (8 + len(text)) % 4 != 0
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    os.replace(path + ".tmp", path)


def make_params(cfg, gen, w_std, b_std, emb_std, ln_noise, pos_std=None):
    d, L, V, P = cfg["n_embd"], cfg["n_layer"], cfg["vocab_size"], cfg["n_positions"]
    randn = lambda *shape: torch.randn(*shape, generator=gen, dtype=torch.float64)
    p = {"wte.weight": randn(V, d) * emb_std, "wpe.weight": randn(P, d) * (emb_std * 0.5 if pos_std is None else pos_std)}
    for i in range(L):
        h = f"h.{i}."
        for ln in ("ln_1", "ln_2"):
            p[h + ln + ".weight"] = 1 + randn(d) * ln_noise
            p[h + ln + ".bias"] = randn(d) * ln_noise * 0.5
        for name, (n_in, n_out) in {"attn.c_attn": (d, 3 * d), "attn.c_proj": (d, d),
                                    "mlp.c_fc": (d, 4 * d), "mlp.c_proj": (4 * d, d)}.items():
            p[h + name + ".weight"] = randn(n_in, n_out) * w_std
            p[h + name + ".bias"] = randn(n_out) * b_std
        p[h + "attn.bias"] = torch.tril(torch.ones(P, P, dtype=torch.float64)).view(1, 1, P, P)
    p["ln_f.weight"] = 1 + randn(d) * ln_noise
    p["ln_f.bias"] = randn(d) * ln_noise * 0.5
    # Round-trip through float32 so the reference sees exactly the weights the file holds.
    return {k: v.to(torch.float32).to(torch.float64) for k, v in p.items()}


def reference_logits(p, cfg, ids, act=lambda x: x):
    """GPT2LMHeadModel semantics in float64: logits [T, V] for every position. `act` is applied
    to the input of every weight product (the q8 reference quantizes there)."""
    d, H, eps = cfg["n_embd"], cfg["n_head"], cfg["layer_norm_epsilon"]
    T, hd = len(ids), d // H
    x = p["wte.weight"][ids] + p["wpe.weight"][:T]
    for i in range(cfg["n_layer"]):
        h = f"h.{i}."
        a = F.layer_norm(x, (d,), p[h + "ln_1.weight"], p[h + "ln_1.bias"], eps)
        q, k, v = (act(a) @ p[h + "attn.c_attn.weight"] + p[h + "attn.c_attn.bias"]).split(d, dim=-1)
        q, k, v = (t.view(T, H, hd).transpose(0, 1) for t in (q, k, v))
        att = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        mask = p[h + "attn.bias"][0, 0, :T, :T].bool()
        att = torch.softmax(att.masked_fill(~mask, torch.finfo(att.dtype).min), dim=-1)
        y = (att @ v).transpose(0, 1).reshape(T, d)
        x = x + act(y) @ p[h + "attn.c_proj.weight"] + p[h + "attn.c_proj.bias"]
        m = F.layer_norm(x, (d,), p[h + "ln_2.weight"], p[h + "ln_2.bias"], eps)
        m = F.gelu(act(m) @ p[h + "mlp.c_fc.weight"] + p[h + "mlp.c_fc.bias"], approximate="tanh")
        x = x + act(m) @ p[h + "mlp.c_proj.weight"] + p[h + "mlp.c_proj.bias"]
    x = F.layer_norm(x, (d,), p["ln_f.weight"], p["ln_f.bias"], eps)
    return act(x) @ p["wte.weight"].T


def greedy(p, cfg, ids, n, act=lambda x: x):
    """n greedy tokens, and the smallest gap between the best and second-best logit on the way
    (a float32 implementation can only disagree where that gap is within its rounding)."""
    ids = list(ids)
    out, margin = [], math.inf
    for _ in range(n):
        top2 = torch.topk(reference_logits(p, cfg, ids, act)[-1], 2)
        margin = min(margin, float(top2.values[0] - top2.values[1]))
        nxt = int(top2.indices[0])
        out.append(nxt)
        ids.append(nxt)
    return out, margin


def q8_blocks(x, levels, half_scales=False):
    """Rows of x [R, K] in blocks of 32 along K (zero-padded), each scaled by its largest
    magnitude / levels in float32 (rounded to float16 for weights), rounded half to even and held
    to +-levels: exactly src/kernels/q8.ts. Returns the values the integers stand for, in float64
    (q x scale is exact there)."""
    R, K = x.shape
    kp = -(-K // 32) * 32
    x32 = torch.zeros(R, kp, dtype=torch.float32)
    x32[:, :K] = x.to(torch.float32)
    blocks = x32.view(R, kp // 32, 32)
    scale = blocks.abs().amax(dim=2, keepdim=True) / levels
    if half_scales:
        scale = scale.half().to(torch.float32)
    q = torch.where(scale == 0, torch.zeros_like(blocks), torch.round(blocks / scale).clamp(-levels, levels))
    return (q.to(torch.float64) * scale.to(torch.float64)).view(R, kp)[:, :K]


def q8_weight(w):
    """A Conv1D weight [K, N] as `--dtype q8` holds it: blocks of 32 along K, per column, +-127,
    float16 scales."""
    return q8_blocks(w.T, 127, half_scales=True).T


def q8_activations(x):
    """Activations as the q8 kernels quantize them before each product: per row, +-63."""
    return q8_blocks(x, 63)


def config_json(cfg):
    return {"activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
            "n_ctx": cfg["n_positions"], "bos_token_id": cfg["vocab_size"] - 1, "eos_token_id": cfg["vocab_size"] - 1,
            **cfg}


def write_fixture(name, cfg, params, prompts, new_tokens, dtype="F32", prefix="", seed=0, all_logits=True):
    d = os.path.join(ROOT, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config_json(cfg), f, indent=2)
    write_safetensors(os.path.join(d, "model.safetensors"), {prefix + k: v for k, v in params.items()}, dtype, seed)
    # The reference sees the weights as the file stores them (rounded to F16/BF16 where so).
    seen = {k: v.to(DTYPES[dtype]).to(torch.float64) for k, v in params.items()}
    cases = []
    for ids in prompts:
        logits = reference_logits(seen, cfg, ids)
        tokens, margin = greedy(seen, cfg, ids, new_tokens)
        case = {"ids": ids, "greedy": tokens, "greedyMargin": float(f"{margin:.4g}")}
        rows = logits if all_logits else logits[-1:]
        case["logits"] = [[float(f"{v:.7g}") for v in row.tolist()] for row in rows]
        cases.append(case)
    ref = {"source": "scripts/make-fixtures.py (float64 PyTorch " + torch.__version__ + ")", "dtype": dtype, "cases": cases}
    with open(os.path.join(d, "reference.json"), "w") as f:
        json.dump(ref, f, separators=(",", ":"))
    return cases


def main():
    # Init-scale weights (GPT-2's std 0.02), saved with the "transformer." prefix some exports use.
    init_cfg = {"n_layer": 2, "n_head": 4, "n_embd": 32, "n_positions": 32, "vocab_size": 256, "layer_norm_epsilon": 1e-5}
    init = make_params(init_cfg, torch.Generator().manual_seed(1), 0.02, 0.02, 0.02, 0.0)
    write_fixture("tiny-init", init_cfg, init, [[7, 200, 3, 3, 91]], 8, prefix="transformer.", seed=1)

    # Trained-model magnitudes: every mistake (erf GELU, a missing bias, a wrong eps, an
    # off-by-one mask) moves these logits far past the test tolerance.
    hot_cfg = {"n_layer": 3, "n_head": 4, "n_embd": 48, "n_positions": 48, "vocab_size": 320, "layer_norm_epsilon": 1e-5}
    hot = make_params(hot_cfg, torch.Generator().manual_seed(2), 0.2, 0.1, 0.5, 0.3, pos_std=0.5)
    prompts = [[5], [17, 250, 3, 99, 64], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]]
    cases = write_fixture("tiny-hot", hot_cfg, hot, prompts, 20, seed=2)
    # What `--dtype bf16` computes: the matmul weights (Conv1D weights and the tied wte) rounded
    # to bfloat16, everything else float32.
    matmul_weight = lambda name: name == "wte.weight" or name.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight"))
    rounded = {k: v.to(torch.bfloat16).to(torch.float64) if matmul_weight(k) else v for k, v in hot.items()}
    bf16_cases = []
    for ids in prompts:
        tokens, margin = greedy(rounded, hot_cfg, ids, 20)
        last = reference_logits(rounded, hot_cfg, ids)[-1]
        bf16_cases.append({"ids": ids, "greedy": tokens, "greedyMargin": float(f"{margin:.4g}"), "logits": [[float(f"{v:.7g}") for v in last.tolist()]]})
    with open(os.path.join(ROOT, "tiny-hot", "reference-bf16-matmul-weights.json"), "w") as f:
        json.dump({"source": "scripts/make-fixtures.py: tiny-hot with its matmul weights rounded to bf16", "dtype": "F32", "cases": bf16_cases}, f, separators=(",", ":"))
    # What `--dtype q8` computes: the matmul weights quantized (wte along d, as the LM head's
    # B = wte^T holds it, which the embedding then reads back), and each weight product's input
    # quantized per row on the fly.
    q8 = {k: (q8_weight(v.T).T if k == "wte.weight" else q8_weight(v)) if matmul_weight(k) else v for k, v in hot.items()}
    q8_cases = []
    for ids in prompts:
        tokens, margin = greedy(q8, hot_cfg, ids, 20, q8_activations)
        last = reference_logits(q8, hot_cfg, ids, q8_activations)[-1]
        q8_cases.append({"ids": ids, "greedy": tokens, "greedyMargin": float(f"{margin:.4g}"), "logits": [[float(f"{v:.7g}") for v in last.tolist()]]})
    with open(os.path.join(ROOT, "tiny-hot", "reference-q8.json"), "w") as f:
        json.dump({"source": "scripts/make-fixtures.py: tiny-hot with q8 matmul weights and q8 activations into every weight product", "dtype": "F32", "cases": q8_cases}, f, separators=(",", ":"))
    for dtype in ("F16", "BF16"):
        write_fixture("tiny-hot-" + dtype.lower(), hot_cfg, hot, prompts[1:2], 20, dtype=dtype, seed=3, all_logits=False)
    for c in cases:
        flat = [v for row in c["logits"] for v in row]
        print(f"tiny-hot prompt of {len(c['ids'])}: max |logit| {max(map(abs, flat)):.2f}, "
              f"greedy {c['greedy']} (smallest top-2 gap {c['greedyMargin']})")


if __name__ == "__main__":
    main()
