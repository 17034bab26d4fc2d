"""``medmm check-eval --checker vlm`` hands each row's images to the model; ``--blind`` replaces each by a black
image of the same size — checked on what the model actually receives (its encoded requests)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("blind")
    subprocess.run([sys.executable, "scripts/make_side_swap_heldout.py", "--out", str(root), "--seed", "11", "--n", "4"],
                   check=True, capture_output=True)
    rows = [json.loads(line) for line in open(root / "dataset.jsonl", encoding="utf-8")][:4]
    path = root / "small.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    from medmm.models.tiny import build_tiny

    model_dir = root / "model"
    build_tiny("llava").save(str(model_dir))
    return root, path, model_dir, rows


@pytest.mark.slow  # two check-eval runs with a tiny model (explanations included): ~2 min on a busy 2-core machine
@pytest.mark.parametrize("blind", [False, True])
def test_check_eval_gives_the_images_and_blind_removes_them(dataset, blind, monkeypatch):
    from medmm.cli import main
    from medmm.models.hf import HFVLM
    from medmm.reports.checker_views import checker_views

    root, path, model_dir, rows = dataset
    seen: list = []
    original = HFVLM.encode

    def recording(self, requests):
        for r in requests:
            seen.append(r.pil_images())
        return original(self, requests)

    monkeypatch.setattr(HFVLM, "encode", recording)
    out = root / ("out-blind" if blind else "out")
    argv = ["check-eval", str(path), "--checker", "vlm", "--model", f"hf:{model_dir}", "--out", str(out)]
    assert main(argv + (["--blind"] if blind else [])) == 0
    assert seen and all(len(imgs) == 1 for imgs in seen)  # one view per request: the frontal radiograph
    from medmm.models import load
    from medmm.reports.checker_views import blank_like
    from medmm.reports.vlm_checker import model_views

    vlm = load(f"hf:{model_dir}")
    view = checker_views(rows[0]["images"], str(root))[0].image
    # what the model is given is the view as training encodes it (LLaVA: padded to a square in the mean colour)
    expected = model_views(vlm, [blank_like(view) if blind else view])[0]
    first = seen[0][0]
    assert first.size == expected.size
    if blind:  # every image the black view, padded as any view is
        assert all(np.array_equal(np.asarray(imgs[0]), np.asarray(expected.convert("RGB"))) for imgs in seen)
        assert not np.asarray(blank_like(view)).any()
    else:
        assert np.array_equal(np.asarray(first), np.asarray(expected.convert("RGB")))
    result = json.loads((out / "check-eval.json").read_text())
    assert result["blind"] is blind and result["n_reports"] == 4
    assert result["simple"]["recall"] is not None and result["clean"]["fpr"] is not None
