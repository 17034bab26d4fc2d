"""The VLM report checker's model calls: SIMPLE and COMPLEX on one shared encoding vs two prompts.

Both sides score the same questions on the same model, reports and images in one process:

* **shared** (``vlm.score_questions``): per batch of reports, the images and the report are encoded
  once, the SIMPLE question (yes / no) and the COMPLEX question (the 13 taxonomy ids) then run on
  copies of that prompt's KV cache;
* **two prompts** (:func:`medmm.models.base.score_questions_per_prompt`, what the checker did before):
  the SIMPLE prompt and the COMPLEX prompt each encoded from scratch (each already scoring its options on
  one KV cache, as ``score_options`` does).

The two must agree (max |difference| of the log-probabilities is printed); the figure is reports/s
and the speed-up. Models: ``tiny:llava`` (0.7 M parameters, 64 px, 16 image tokens) and the
config-built ``bench-llava-16m`` (16.7 M parameters, 224 px, 196 image tokens), random weights:
speed does not depend on them. ``python -m bench.checker_speed [--reports 32] [--repeat 3] [--device cuda]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np
from PIL import Image

from medmm.models import Question, Request
from medmm.models.base import score_questions_per_prompt
from medmm.reports.taxonomy import TYPE_IDS

# Everything both questions share sits in the prompt (the report, and the error types the COMPLEX question
# picks from), so it is encoded once; each question then adds only its own sentence.
PREFIX = "Error types: {types}.\n\nHere is a radiology report for the image.\n\n{report}\n\n"
SIMPLE = "Does this report contain an error? Answer yes or no."
COMPLEX = "If it contains an error, which type of error is it? Answer with one of the error types."


def questions() -> list[Question]:
    return [Question(SIMPLE, ("yes", "no")), Question(COMPLEX, tuple(TYPE_IDS))]


def reports(n: int) -> list[str]:
    """Synthetic reports (medmm's generator, as packaged for the tiny tokenizer), cycled to ``n``."""
    from medmm.models.tiny import training_corpus

    texts = [t for t in training_corpus() if "FINDINGS:" in t]
    return [texts[i % len(texts)] for i in range(n)]


def requests(n: int, size: int) -> list[Request]:
    rng = np.random.default_rng(0)
    return [Request(images=[Image.fromarray((rng.random((size, size, 3)) * 255).astype(np.uint8))],
                    prompt=PREFIX.format(types=", ".join(TYPE_IDS), report=r)) for r in reports(n)]


def _cpu() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def _timed(fn, repeat: int) -> tuple[float, float]:  # noqa: ANN001 - a callable
    walls, cpus = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), _cpu()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(_cpu() - c0)
    return float(np.median(walls)), float(np.median(cpus))


def run_model(spec: str, n: int, repeat: int, batch: int, device: str) -> dict[str, float | str]:
    from medmm.models.tiny import build_tiny

    vlm = build_tiny(spec, device=device)
    size = int(vlm.tiny_config.image_size)  # type: ignore[attr-defined]
    reqs, qs = requests(n, size), questions()
    shared = vlm.score_questions(reqs, qs, batch_size=batch)  # also the warm-up of both sides
    apart = score_questions_per_prompt(vlm, reqs, qs)
    diff = max(abs(a.logprob - b.logprob) for ra, rb in zip(shared, apart) for qa, qb in zip(ra, rb)
               for a, b in zip(qa, qb))
    w_shared, c_shared = _timed(lambda: vlm.score_questions(reqs, qs, batch_size=batch), repeat)
    w_apart, c_apart = _timed(lambda: score_questions_per_prompt(vlm, reqs, qs), repeat)
    return {"model": spec, "params": float(sum(p.numel() for p in vlm.model.parameters())), "reports": float(n),
            "batch": float(batch), "max_abs_diff": diff, "shared_s": w_shared, "two_prompt_s": w_apart,
            "shared_cpu_s": c_shared, "two_prompt_cpu_s": c_apart, "device": device}


def report(rows: list[dict[str, float | str]]) -> str:
    lines = ["VLM checker, SIMPLE (yes/no) + COMPLEX (13 taxonomy ids) per report; median of timed runs after a "
             "warm-up run of each side (the one compared for equality)"]
    for r in rows:
        n = float(r["reports"])
        lines.append(
            f"  {r['model']} ({float(r['params']) / 1e6:.1f} M params, {r['device']}, {n:.0f} reports, batch {r['batch']:.0f}): "
            f"shared encoding {n / float(r['shared_s']):.1f} reports/s ({n / float(r['shared_cpu_s']):.1f} per CPU-s) vs "
            f"two prompts {n / float(r['two_prompt_s']):.1f} reports/s ({n / float(r['two_prompt_cpu_s']):.1f} per CPU-s) -> "
            f"{float(r['two_prompt_s']) / float(r['shared_s']):.2f}x wall, "
            f"{float(r['two_prompt_cpu_s']) / float(r['shared_cpu_s']):.2f}x CPU time; "
            f"max |logprob difference| {float(r['max_abs_diff']):.1e}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reports", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8, help="reports per shared forward")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    ap.add_argument("--models", default="llava,models/bench-llava-16m.yaml")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    rows = [run_model(m, args.reports, args.repeat, args.batch, args.device) for m in args.models.split(",") if m]
    print(report(rows))


if __name__ == "__main__":
    main()
