"""``medmm probe leaderboard``: ranked runs with intervals on shared units, paired differences, all outputs."""

from __future__ import annotations

import csv
import json

import pytest

from medmm.cli import main
from medmm.errors import InputError
from medmm.probe.leaderboard import leaderboard
from medmm.probe.runner import run_probe

from .conftest import FakeVLM
from .test_runner import _negation_file


class _Other(FakeVLM):
    """A second model: always answers Yes (right on every true question, wrong on every adversarial one)."""

    def generate(self, requests, max_new_tokens=64, temperature=0.0, **kwargs):
        from medmm.models.base import Generation

        return [Generation("Yes", 1, 1, 0.0, "stop") for _ in requests]

    def fingerprint(self):
        return "always-yes"


def test_leaderboard_of_two_models(tmp_path, capsys):
    data = _negation_file(tmp_path, tuple(f"{c}.png" for c in "abcd"))
    run_probe("negation", str(data), FakeVLM(), str(tmp_path / "fake"), progress=False, model_spec="fake")
    run_probe("negation", str(data), _Other(), str(tmp_path / "yes"), progress=False, model_spec="always-yes")
    board = leaderboard([str(tmp_path / "yes"), str(tmp_path / "fake")], str(tmp_path / "lb"), n_boot=200)
    assert board.n_shared == 4 and len(board.labels) == 2
    # always-yes gets every pair wrong (the adversarial answer is no): modality 0, abnormality 0 (truth no)
    yes = board.scores[board.labels.index(next(lb for lb in board.labels if lb.startswith("always-yes")))]
    assert yes["modality"].value == 0.0 and yes["abnormality"].value == 0.0
    head = [s["overall"].value for s in board.scores]
    assert head == sorted(head, reverse=True)  # ranked by overall
    d = board.differences[1]["overall"]
    assert d.value == pytest.approx(board.scores[1]["overall"].value - board.scores[0]["overall"].value)
    assert d.lo <= d.value <= d.hi and board.differences[0] == {}
    for name in ("leaderboard.md", "leaderboard.html", "leaderboard.csv", "leaderboard.json", "plots/leaderboard.png"):
        assert (tmp_path / "lb" / name).is_file(), name
    rows = list(csv.DictReader(open(tmp_path / "lb" / "leaderboard.csv")))
    assert len(rows) == 2 * 6 and {r["rank"] for r in rows} == {"1", "2"}
    assert json.loads((tmp_path / "lb" / "leaderboard.json").read_text())["n_shared"] == 4
    assert (tmp_path / "lb" / "plots" / "leaderboard.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["probe", "leaderboard", str(tmp_path / "fake"), str(tmp_path / "yes"), "--out", str(tmp_path / "lb2"),
                 "--n-boot", "100"]) == 0
    out = capsys.readouterr().out
    assert "| rank |" in out and "Paired differences to the leader" in out and "[" in out


def test_leaderboard_refuses_mixed_or_disjoint_runs(tmp_path):
    a = _negation_file(tmp_path / "a", ("a.png",)) if (tmp_path / "a").mkdir() is None else None
    b = _negation_file(tmp_path / "b", ("z.png",)) if (tmp_path / "b").mkdir() is None else None
    run_probe("negation", str(a), FakeVLM(), str(tmp_path / "ra"), progress=False, limit=1)
    data_b = json.loads(b.read_text())
    for r in data_b:
        r["id"] = 99  # another image
    b.write_text(json.dumps(data_b))
    run_probe("negation", str(b), FakeVLM(), str(tmp_path / "rb"), progress=False)
    with pytest.raises(InputError, match="share no images"):
        leaderboard([str(tmp_path / "ra"), str(tmp_path / "rb")], str(tmp_path / "lb"), n_boot=50)
