"""GPT-2 small with random weights in numpy, KV-cached: the bench's side-by-side peer.

Same work as bench/end-to-end.ts: prefill of N tokens, then decode steps after a 16-token
prompt; or ("batch") decode steps of 1, 2, 4, 8 and 16 sequences at once after a shared prompt.
Run by bench/run.ts with OPENBLAS_NUM_THREADS set; prints one JSON object.
usage: python3 bench/numpy_gpt2.py PREFILL_TOKENS DECODE_STEPS
       python3 bench/numpy_gpt2.py batch DECODE_STEPS
"""
import json
import sys
import time

import numpy as np

D, L, H, V, P = 768, 12, 12, 50257, 1024
HD = D // H
rng = np.random.default_rng(0)


def weights(*shape):
    return (rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02))


wte, wpe = weights(V, D), weights(P, D)
ones, zeros = np.ones(D, np.float32), np.zeros(D, np.float32)
blocks = [dict(attn=weights(D, 3 * D), attn_b=np.zeros(3 * D, np.float32), proj=weights(D, D), proj_b=zeros,
               fc=weights(D, 4 * D), fc_b=np.zeros(4 * D, np.float32), fc2=weights(4 * D, D), fc2_b=zeros) for _ in range(L)]


def layer_norm(x):
    mean = x.mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(((x - mean) ** 2).mean(-1, keepdims=True) + np.float32(1e-5)) * ones + zeros


def gelu(x):
    return np.float32(0.5) * x * (1 + np.tanh(np.float32(0.7978845608) * (x + np.float32(0.044715) * x ** 3)))


def attend(q, k, v, cache, i):
    """Causal attention of q's t rows over layer i of the cache, after appending k and v."""
    t, past = len(q), cache["n"]
    cache["k"][i][past:past + t], cache["v"][i][past:past + t] = k, v
    keys = cache["k"][i][:past + t].reshape(-1, H, HD).transpose(1, 2, 0)
    values = cache["v"][i][:past + t].reshape(-1, H, HD).transpose(1, 0, 2)
    att = (q.reshape(t, H, HD).transpose(1, 0, 2) @ keys) / np.float32(np.sqrt(HD))
    if t > 1:
        att = att + np.triu(np.full((t, past + t), -np.inf, np.float32), past + 1)
    att = np.exp(att - att.max(-1, keepdims=True))
    att /= att.sum(-1, keepdims=True)
    return (att @ values).transpose(1, 0, 2).reshape(t, D)


def forward(ids, caches):
    """One cache: ids are its next tokens. Several: the next token of each (a decode batch)."""
    positions = [caches[0]["n"] + i for i in range(len(ids))] if len(caches) == 1 else [c["n"] for c in caches]
    x = wte[ids] + wpe[positions]
    for i, b in enumerate(blocks):
        q, k, v = np.split(layer_norm(x) @ b["attn"] + b["attn_b"], 3, axis=-1)
        if len(caches) == 1:
            y = attend(q, k, v, caches[0], i)
        else:
            y = np.concatenate([attend(q[s:s + 1], k[s:s + 1], v[s:s + 1], c, i) for s, c in enumerate(caches)])
        x = x + y @ b["proj"] + b["proj_b"]
        x = x + gelu(layer_norm(x) @ b["fc"] + b["fc_b"]) @ b["fc2"] + b["fc2_b"]
    for c in caches:
        c["n"] += len(ids) // len(caches)
    return layer_norm(x[-len(caches):] if len(caches) > 1 else x[-1:]) @ wte.T


def new_cache():
    return {"n": 0, "k": [np.zeros((P, D), np.float32) for _ in range(L)], "v": [np.zeros((P, D), np.float32) for _ in range(L)]}


ids = lambda n, offset: [(offset + i * 7919) % V for i in range(n)]
warm = new_cache()
forward(ids(8, 1), [warm])
for i in range(3):
    forward([i], [warm])
if sys.argv[1] == "batch":
    steps, batches = int(sys.argv[2]), []
    for n in (1, 2, 4, 8, 16):
        prompt = new_cache()
        forward(ids(16, 5), [prompt])
        caches = [{"n": prompt["n"], "k": [k.copy() for k in prompt["k"]], "v": [v.copy() for v in prompt["v"]]} for _ in range(n)]
        tokens = lambda step: [(step * 31 + s * 977) % V for s in range(n)]
        forward(tokens(0), caches)
        t0 = time.perf_counter()
        for step in range(1, steps + 1):
            forward(tokens(step), caches)
        s = time.perf_counter() - t0
        batches.append({"sequences": n, "steps": steps, "msPerStep": s * 1000 / steps, "tokensPerSec": n * steps / s})
    print(json.dumps({"batches": batches}))
    sys.exit(0)
prefill_tokens, decode_steps = int(sys.argv[1]), int(sys.argv[2])
t0 = time.perf_counter()
forward(ids(prefill_tokens, 3), [new_cache()])
prefill_ms = (time.perf_counter() - t0) * 1000
cache = new_cache()
forward(ids(16, 5), [cache])
t0 = time.perf_counter()
for i in range(decode_steps):
    forward([(i * 31) % V], [cache])
decode_s = time.perf_counter() - t0
print(json.dumps({"prefillTokens": prefill_tokens, "prefillMs": prefill_ms, "prefillTokensPerSec": prefill_tokens * 1000 / prefill_ms,
                  "decodeSteps": decode_steps, "decodeTokensPerSec": decode_steps / decode_s}))
