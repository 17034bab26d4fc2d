"""Model-layer speed on CPU: option scoring with a shared prompt vs naive per-option forwards,
and batched vs one-by-one generation, on a ~16 M-parameter random LLaVA-style model at 224 px
(configs/models/bench-llava-16m.yaml). Both sides run in the same process, same inputs."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from bench.common import median_time
from medmm.models import Request


def _requests(n: int) -> list[Request]:
    rng = np.random.default_rng(0)
    return [Request(images=[Image.fromarray((rng.random((224, 224, 3)) * 255).astype(np.uint8))],
                    prompt=f"Is there a pleural effusion on the {'left' if i % 2 else 'right'}? Answer yes or no.")
            for i in range(n)]


def run(repeat: int = 3) -> dict[str, float]:
    import torch

    from medmm.models.tiny import CONFIG_DIR, build_tiny

    torch.set_num_threads(os.cpu_count() or 1)
    vlm = build_tiny(os.path.join(CONFIG_DIR, "bench-llava-16m.yaml"))
    n_params = sum(p.numel() for p in vlm.model.parameters())
    options = ["yes", "no", "small left pleural effusion", "moderate right pleural effusion"]
    reqs = _requests(4)
    fast = np.array(vlm.score_options(reqs, options))
    naive = np.array(vlm.score_options_naive(reqs, options))
    assert np.allclose(fast, naive, atol=1e-3), "shared-prompt scores differ from naive scores"
    out = {"params": float(n_params)}
    out["score_shared"] = median_time(lambda: vlm.score_options(reqs, options), repeat)
    out["score_naive"] = median_time(lambda: vlm.score_options_naive(reqs, options), repeat)
    gen_reqs = _requests(8)
    out["gen_batch8"] = median_time(lambda: vlm.generate(gen_reqs, max_new_tokens=16, batch_size=8), repeat)
    out["gen_batch1"] = median_time(lambda: vlm.generate(gen_reqs, max_new_tokens=16, batch_size=1), repeat)
    return out


def report(r: dict[str, float]) -> str:
    return "\n".join([
        f"model layer, random LLaVA-style model with {r['params'] / 1e6:.1f} M parameters at 224 px, CPU (median)",
        f"  score_options, 4 requests x 4 options: shared prompt {r['score_shared']:.2f} s vs naive per-option "
        f"{r['score_naive']:.2f} s -> {r['score_naive'] / r['score_shared']:.2f}x (target >= 1.8x)",
        f"  generate 8 requests x 16 tokens: batch 8 {r['gen_batch8']:.2f} s vs batch 1 {r['gen_batch1']:.2f} s -> "
        f"{r['gen_batch1'] / r['gen_batch8']:.2f}x throughput",
    ])


if __name__ == "__main__":
    print(report(run()))
