"""Probe runner speed: the resumable runner against a plain per-sample loop, a resumed run, an
OpenAI-compatible server at 8 concurrent requests against 1, and the scorer on a ProbMed-sized
response set. Every ratio is measured in the same run on the same samples.

    python -m bench.probe_speed [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from medmm.probe.build import build_negation
from medmm.probe.negation import NegationResponse, score_negation
from medmm.probe.runner import load_samples, run_probe
from medmm.probe.samples import load_image


class _Server:
    """An OpenAI-compatible stand-in that answers "Yes" after ``latency`` seconds (a remote GPU)."""

    def __init__(self, latency: float) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(latency)
                data = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": "Yes"},
                                                "finish_reason": "stop"}],
                                   "usage": {"prompt_tokens": 10, "completion_tokens": 1}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _naive(model, data: str) -> float:  # noqa: ANN001
    """One request at a time, images decoded per question, no cache: what a first script does."""
    from medmm.models import Request

    samples, _ = load_samples("negation", data, None, "mc", ())
    t0 = time.perf_counter()
    for s in samples:
        model.generate([Request(images=[load_image(s.image)], prompt=s.prompt)], max_new_tokens=8)
    return time.perf_counter() - t0


def _timed(fn) -> float:  # noqa: ANN001
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _probmed_sized(n_images: int, seed: int = 0) -> list[NegationResponse]:
    rng = random.Random(seed)
    out = []
    for i in range(n_images):
        qs = [("modality_gt", "yes"), ("modality_hallu", "no"), ("body_part_gt", "yes"), ("body_part_hallu", "no"),
              ("abnormality", rng.choice(("yes", "no")))]
        for k in range(rng.randint(0, 2)):
            qs += [(f"entity_gt_{k}", "yes"), (f"entity_hallu_{k}", "no"), (f"grounding_gt_{k}", "yes"),
                   (f"grounding_hallu_{k}", "no")]
        for qa, gt in qs:
            out.append(NegationResponse(i, qa, rng.choice(("ct scan_chest", "mri_brain", "x-ray_chest")), "q", gt,
                                        rng.choice(("Yes", "No", "yes, there is", "Normal"))))
    return out


def run(quick: bool = False) -> dict[str, float]:
    import torch

    from medmm.models import load
    from medmm.synth import SMALL, synthesize

    torch.set_num_threads(1)
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        synthesize(os.path.join(tmp, "syn"), n=4 if quick else 12, seed=0, workers=1, config=SMALL)
        data = os.path.join(tmp, "neg.json")
        build_negation(os.path.join(tmp, "syn", "manifest.jsonl"), data)
        model = load("tiny:llava")
        out["n_samples"] = len(load_samples("negation", data, None, "mc", ())[0])
        out["naive"] = _naive(model, data)
        run_dir = os.path.join(tmp, "run")
        out["runner"] = _timed(lambda: run_probe("negation", data, model, run_dir, mode="mc", batch_size=8,
                                                 max_new_tokens=8, progress=False))
        out["resume"] = _timed(lambda: run_probe("negation", data, model, run_dir, mode="mc", max_new_tokens=8,
                                                 progress=False))
        server = _Server(latency=0.05)
        try:
            for c in (1, 8):
                http = load(f"http:{server.url}", concurrency=c)
                out[f"http_c{c}"] = _timed(lambda: run_probe("negation", data, http, os.path.join(tmp, f"http{c}"),
                                                             batch_size=8, progress=False))
        finally:
            server.close()
    responses = _probmed_sized(600 if quick else 6303)
    out["n_questions"] = len(responses)
    out["score"] = _timed(lambda: score_negation(responses, "probmed-compat"))
    return out


def report(r: dict[str, float]) -> str:
    n = int(r["n_samples"])
    return "\n".join([
        f"probe runner, {n} ProbMed-style questions on synthetic studies, tiny LLaVA (CPU, 1 thread), 8 new tokens",
        f"  runner (batch 8, cache) {r['runner']:.2f} s vs per-sample loop {r['naive']:.2f} s -> "
        f"{r['naive'] / r['runner']:.2f}x; resumed run with everything cached {r['resume']:.2f} s",
        f"  http server with 50 ms latency: concurrency 8 {r['http_c8']:.2f} s vs 1 {r['http_c1']:.2f} s -> "
        f"{r['http_c1'] / r['http_c8']:.2f}x",
        f"  ProbMed scoring (probmed-compat) of {int(r['n_questions'])} answers: {r['score']:.2f} s",
    ])


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="python -m bench.probe_speed")
    p.add_argument("--quick", action="store_true")
    print(report(run(p.parse_args().quick)))
