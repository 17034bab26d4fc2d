"""bench/deid_compare.py on a one-copy corpus: medmm leaves no planted marker or original UID anywhere;
each installed peer is measured on the same files (skipped, with its reason, when not installed)."""

from __future__ import annotations

import importlib.util

import pytest

from bench.deid_compare import PLACES, main, make_corpus, run_medmm, survivors


def test_medmm_leaves_no_planted_marker(tmp_path):
    planted = make_corpus(tmp_path / "corpus", copies=1)
    assert set(planted.markers.values()) == set(PLACES)
    written, refused = run_medmm(tmp_path / "corpus", tmp_path / "out")
    assert written == planted.files - 1 and refused == 1  # the encapsulated PDF is refused
    places, identifiers = survivors(tmp_path / "out", planted)
    assert identifiers == 0 and not places


@pytest.mark.skipif(importlib.util.find_spec("dicognito") is None, reason="dicognito (bench extra) not installed")
def test_the_comparison_prints_every_tool(tmp_path, capsys):
    assert main(["--copies", "1", "--keep", str(tmp_path / "k")]) == 0
    out = capsys.readouterr().out
    assert "medmm" in out and "dicognito" in out and "surviving identifiers" in out


def test_a_missing_peer_is_named_and_skipped(tmp_path, capsys, monkeypatch):
    import bench.deid_compare as bench

    monkeypatch.setattr(bench, "TOOLS", {"medmm": bench.TOOLS["medmm"],
                                         "nosuchpeer": ("nosuchpeer_module", bench.run_dicognito)})
    assert main(["--copies", "1"]) == 0
    out = capsys.readouterr().out
    assert "nosuchpeer: not installed" in out and "skipped" in out
