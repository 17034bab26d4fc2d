"""Optional GPU smoke benchmark: a ~1 B-parameter random LLaVA-style model in bf16 on CUDA.

Reports generation and option-scoring throughput, and checks shared-prompt scores against
naive forwards. Without CUDA it prints a skip line and exits 0. Results also go to
``$OUT/gpu_smoke.json`` when ``OUT`` is set. Run: ``python -m bench.gpu_smoke``.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> int:
    import torch

    if not torch.cuda.is_available():
        print("gpu_smoke: CUDA is not available here; skipped.")
        return 0
    import numpy as np
    from PIL import Image

    from medmm.models import Request
    from medmm.models.tiny import TinyConfig, build_tiny

    cfg = TinyConfig(
        family="llava", image_size=336, patch_size=14,
        vision={"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 12, "num_attention_heads": 16},
        text={"hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 16, "num_attention_heads": 16,
              "num_key_value_heads": 8},
        tokenizer={"vocab_size": 4000},
    )
    t0 = time.perf_counter()
    vlm = build_tiny(cfg, device="cuda", dtype="bfloat16")
    build_s = time.perf_counter() - t0
    n_params = sum(p.numel() for p in vlm.model.parameters())
    rng = np.random.default_rng(0)
    reqs = [Request(images=[Image.fromarray((rng.random((512, 512, 3)) * 255).astype(np.uint8))],
                    prompt=f"Is there a nodule in the {'left' if i % 2 else 'right'} lung? Answer yes or no.")
            for i in range(16)]
    options = ["yes", "no", "small left pleural effusion", "moderate right pleural effusion"]

    def timed(fn):
        fn()
        torch.cuda.synchronize()
        t = time.perf_counter()
        out = fn()
        torch.cuda.synchronize()
        return out, time.perf_counter() - t

    gens, gen_s = timed(lambda: vlm.generate(reqs, max_new_tokens=64, batch_size=16))
    _, gen1_s = timed(lambda: vlm.generate(reqs[:4], max_new_tokens=64, batch_size=1))
    scores, score_s = timed(lambda: vlm.score_options(reqs, options))
    naive, naive_s = timed(lambda: vlm.score_options_naive(reqs, options))
    tokens = sum(g.completion_tokens for g in gens)
    result = {
        "device": torch.cuda.get_device_name(0), "torch": torch.__version__, "params": n_params,
        "build_s": round(build_s, 2),
        "generate_batch16_tokens_per_s": round(tokens / gen_s, 1),
        "generate_batch1_tokens_per_s": round(4 * 64 / gen1_s, 1),
        "score_requests_per_s_shared": round(len(reqs) / score_s, 2),
        "score_requests_per_s_naive": round(len(reqs) / naive_s, 2),
        "score_speedup": round(naive_s / score_s, 2),
        "max_abs_diff_shared_vs_naive_bf16": float(np.abs(np.array(scores) - np.array(naive)).max()),
    }
    print(json.dumps(result, indent=2))
    if os.environ.get("OUT"):
        with open(os.path.join(os.environ["OUT"], "gpu_smoke.json"), "w") as fh:
            json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
