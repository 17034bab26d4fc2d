"""End to end on synthetic studies with a tiny model: synth -> build -> run (every mode, controls) ->
report with plots -> compare -> score; and a real SIGKILL of a run that then resumes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from medmm.cli import main
from medmm.probe.runner import run_probe


def _cli(*args: str) -> None:
    assert main(list(args)) == 0, args


@pytest.fixture(scope="module")
def tiny():
    """The tiny model, on one torch thread while this module runs (two threads on a loaded two-core
    machine spin against each other and run ten times slower)."""
    import torch

    from medmm.models import load

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield load("tiny:llava")
    torch.set_num_threads(threads)


def test_end_to_end_on_synthetic_studies(tmp_path, tiny):
    syn, w = tmp_path / "syn", tmp_path / "work"
    _cli("synth", "--out", str(syn), "--n", "12", "--seed", "1", "--small", "--workers", "1")
    _cli("probe", "build", "negation", "--from", str(syn / "manifest.jsonl"), "--out", str(w / "neg.json"))
    _cli("probe", "build", "confusion", "--from", str(syn / "manifest.jsonl"), "--out", str(w / "conf.json"))
    n_pairs = len(json.loads((w / "conf.json").read_text()))
    assert n_pairs >= 1

    # the CLI path once, then every other mode through the library with the already loaded model
    _cli("probe", "run", "--bench", "negation", "--data", str(w / "neg.json"), "--model", "tiny:llava",
         "--mode", "greedy", "--controls", "blind,text,region", "--out", str(w / "neg_greedy"), "--quiet")
    run_probe("negation", str(w / "neg.json"), tiny, str(w / "neg_mc"), mode="mc", progress=False,
              model_spec="tiny:llava", max_new_tokens=8)
    for mode in ("mc", "greedy", "prefix", "judge"):
        run_probe("confusion", str(w / "conf.json"), tiny, str(w / f"conf_{mode}"), mode=mode, controls=("blind", "text"),
                  judge=tiny if mode == "judge" else None, progress=False, model_spec="tiny:llava", max_new_tokens=8)

    metrics = json.loads((w / "neg_greedy" / "metrics.json").read_text())
    for k in ("modality", "organ", "abnormality", "condition", "position", "overall"):
        assert 0.0 <= metrics[k] <= 1.0 and k in metrics["random_baseline"]
    assert set(metrics["controls"]) == {"multimodal_gain", "text_preference", "region_check"}
    assert set(metrics["variants"]) == {"none", "blank", "noise", "text", "crop", "draw"}
    assert metrics["variants"]["none"]["n_questions"] == metrics["n_questions"]  # the question alone, every one
    for mode in ("mc", "greedy", "prefix", "judge"):
        m = json.loads((w / f"conf_{mode}" / "metrics.json").read_text())
        assert m["n_pairs"] == n_pairs and {"set_accuracy", "individual_accuracy", "confusion", "invalid_rate",
                                            "per_category"} <= set(m)
        if mode in ("greedy", "prefix"):
            assert m["invalid_rate"] == 0.0  # scored modes always choose

    # score: the run's own predictions/responses through the benchmark scorers give the run's numbers
    _cli("probe", "score", "--bench", "confusion", "--data", str(w / "conf.json"),
         "--predictions", str(w / "conf_greedy" / "predictions.jsonl"), "--out", str(w / "s_conf.json"))
    scored = json.loads((w / "s_conf.json").read_text())
    run_m = json.loads((w / "conf_greedy" / "metrics.json").read_text())
    assert scored["set_accuracy"] == pytest.approx(run_m["set_accuracy"]) and scored["missing_predictions"] == 0
    _cli("probe", "score", "--bench", "negation", "--predictions", str(w / "neg_greedy" / "responses.json"),
         "--parser", "probmed-compat", "--out", str(w / "s_neg.json"))
    assert json.loads((w / "s_neg.json").read_text())["overall"] == pytest.approx(metrics["overall"])

    for run in ("neg_greedy", "conf_prefix"):
        _cli("probe", "report", str(w / run), "--n-boot", "200")
        md = (w / run / "report.md").read_text()
        assert "95% CI" in md and "MG vs none" in md and "MG vs blank" in md and "Text preference" in md
        assert (w / run / "report.html").read_text().count("<img") >= 1
        with open(w / run / "plots" / "categories.png", "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    assert "Region check" in (w / "neg_greedy" / "report.md").read_text()
    assert (w / "neg_greedy" / "plots" / "region_check.png").is_file()
    assert (w / "conf_prefix" / "plots" / "per_category.png").is_file()
    assert "## Per category" in (w / "conf_prefix" / "report.md").read_text()
    _cli("probe", "compare", str(w / "neg_mc"), str(w / "neg_greedy"), "--out", str(w / "cmp"), "--n-boot", "200")
    cmp = json.loads((w / "cmp" / "compare.json").read_text())
    assert cmp["n_shared"] == 12 and set(cmp["difference"]) == {"modality", "organ", "abnormality", "condition",
                                                                "position", "overall"}
    d = cmp["difference"]["overall"]
    assert d["value"] == pytest.approx(cmp["b_scores"]["overall"]["value"] - cmp["a_scores"]["overall"]["value"])
    assert d["lo"] <= d["value"] <= d["hi"]
    assert (w / "cmp" / "plots" / "compare.png").is_file()


def _ok_rows(cache: str) -> int:
    try:
        with sqlite3.connect(f"file:{cache}?mode=ro", uri=True, timeout=1) as c:
            return c.execute("SELECT COUNT(*) FROM results WHERE status='ok'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


@pytest.mark.slow
def test_killed_run_resumes_without_repeating_work(tmp_path, synth_small):
    from medmm.probe.build import build_negation

    data = tmp_path / "neg.json"
    build_negation(synth_small / "manifest.jsonl", data)
    out = tmp_path / "run"
    cache = str(out / "cache.sqlite")
    cmd = [sys.executable, "-m", "medmm.cli", "probe", "run", "--bench", "negation", "--data", str(data),
           "--model", "tiny:llava", "--mode", "mc", "--max-new-tokens", "8", "--controls", "blind",
           "--batch-size", "1", "--quiet", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.time() + 120
    while _ok_rows(cache) < 25 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    with sqlite3.connect(cache) as c:
        before = dict(c.execute("SELECT item_key, updated_at FROM results WHERE status='ok'").fetchall())
    assert 25 <= len(before)
    assert not (out / "metrics.json").exists()  # it really died mid-run

    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    run = json.loads((out / "run.json").read_text())
    assert run["n_cached"] == len(before)
    assert run["n_computed"] == run["n_samples"] - len(before) > 0
    with sqlite3.connect(cache) as c:
        after = dict(c.execute("SELECT item_key, updated_at FROM results").fetchall())
        attempts = dict(c.execute("SELECT item_key, attempts FROM results").fetchall())
    assert all(after[k] == t and attempts[k] == 1 for k, t in before.items())  # finished samples untouched
    assert len(after) == run["n_samples"]
