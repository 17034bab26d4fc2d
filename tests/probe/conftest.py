from __future__ import annotations

import os
from pathlib import Path

import pytest


def shared_dir() -> Path:
    env = os.environ.get("MEDMM_SHARED")
    return Path(env) if env else Path(__file__).resolve().parents[2] / ".." / "shared"


@pytest.fixture
def shared_data() -> Path:
    path = shared_dir() / "data"
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path} (set MEDMM_SHARED)")
    return path


import hashlib  # noqa: E402
from typing import Sequence  # noqa: E402

from medmm.models.base import VLM, Generation, OptionScore, Request, options_per_request  # noqa: E402


class FakeVLM(VLM):
    """A deterministic model without weights: answers from a hash of the prompt and the image pixels.

    ``empty_once`` holds prompt substrings answered with "" the first time (then normally);
    ``calls`` counts the requests answered, ``fail_on`` prompt substrings that raise a ModelError.
    """

    name = "fake"

    def __init__(self, empty_once: Sequence[str] = (), fail_on: Sequence[str] = ()) -> None:
        self.empty_once = list(empty_once)
        self.fail_on = list(fail_on)
        self.calls = 0
        self.seen: list[str] = []
        self.requests: list[Request] = []  # every request answered (what the model was given)
        self.gen_kwargs: list[dict] = []  # the generation options of every generate call

    def _h(self, r: Request) -> int:
        img = r.pil_images()[0].tobytes() if r.images else b""
        return int(hashlib.sha256((r.prompt or "").encode() + img).hexdigest()[:8], 16)

    def generate(self, requests, max_new_tokens=64, temperature=0.0, **kwargs):
        from medmm.models import ModelError

        out = []
        self.gen_kwargs.append({"max_new_tokens": max_new_tokens, "temperature": temperature, **kwargs})
        for r in requests:
            if any(f in (r.prompt or "") for f in self.fail_on):
                raise ModelError("fake failure")
        for r in requests:
            self.calls += 1
            self.seen.append(r.prompt or "")
            self.requests.append(r)
            hit = next((e for e in self.empty_once if e in (r.prompt or "")), None)
            if hit is not None:
                self.empty_once.remove(hit)
                text = ""
            elif "[System]" in (r.prompt or ""):
                text = f"A: {self._h(r) % 10 + 1}\nB: {self._h(r) // 10 % 10 + 1}\nYour explanation: fake"
            elif "yes/no" in (r.prompt or ""):
                text = ["Yes", "No", "no idea"][self._h(r) % 3]
            else:
                text = ["A", "B", '("A")', "not sure"][self._h(r) % 4]
            out.append(Generation(text, 10, 1, 0.0, "stop"))
        return out

    def score_option_details(self, requests, options):
        rows = []
        for r, opts in zip(requests, options_per_request(requests, options)):
            self.calls += 1
            self.requests.append(r)
            h = self._h(r)
            rows.append([OptionScore(o, -((h >> (4 * k)) % 16) / 4.0, 1 + len(o) // 8) for k, o in enumerate(opts)])
        return rows

    def fingerprint(self) -> str:
        return "fake-vlm-v1"


@pytest.fixture(scope="session")
def synth_small(tmp_path_factory):
    """12 small synthetic studies (shared by the tests of this folder; read-only)."""
    from medmm.synth import SMALL, synthesize

    out = tmp_path_factory.mktemp("synth")
    synthesize(str(out), n=12, seed=0, workers=1, config=SMALL)
    return out
