"""Audit work units (issue 19: 2 workers at least 1.85x one): the input is cut into units without parsing it,
each pool worker lists, checks and writes its own units, and the result is the store one process writes —
same flags, nothing lost or duplicated after a kill, a chain that verifies and still names outside edits."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from medmm.audit import runner
from medmm.audit.runner import audit, plan_units
from medmm.audit.store import Store
from medmm.reports.corpus import read_corpus
from medmm.reports.inject import inject_dataset
from medmm.reports.taxonomy import TEXT_HEADER_TYPES
from medmm.studies import iter_folder, iter_manifest
from medmm.studies.readers import folder_names, folder_study, iter_manifest_slice, manifest_slices

HAND = os.path.join(os.path.dirname(__file__), "data", "hand_reports.txt")


def _manifest(tmp_path, copies: int = 1, name: str = "manifest.jsonl") -> str:
    rows = read_corpus(HAND).rows
    path = tmp_path / name
    with open(path, "w", encoding="utf-8") as fh:
        for c in range(copies):
            for r in inject_dataset(rows, rate=0.5, types=TEXT_HEADER_TYPES, seed=c):
                fh.write(json.dumps({"study_id": f"{r['id']}-{c}", "report": r["report"], "header": r["header"]}) + "\n")
    return str(path)


def _flag_set(db: str) -> set[tuple]:
    con = sqlite3.connect(db)
    try:
        return set(con.execute('SELECT r.text, f.type, f.start, f."end", f.confidence, f.rule FROM flags f '
                               "JOIN reports r ON r.study_key = f.study_key").fetchall())
    finally:
        con.close()


def _count(db: str, sql: str) -> int:
    try:
        con = sqlite3.connect(db, timeout=30)
        try:
            return int(con.execute(sql).fetchone()[0])
        finally:
            con.close()
    except sqlite3.DatabaseError:
        return 0


def test_manifest_slices_read_exactly_as_the_whole_manifest(tmp_path):
    (tmp_path / "img.png").write_bytes(b"x")
    lines = [json.dumps({"study_id": "a", "report": "FINDINGS: Normal.", "images": ["img.png"]}),
             "",
             "{not json",
             json.dumps(["a list"]),
             json.dumps({"study_id": "é-ü", "report": "Ünïcode répört ✓"}, ensure_ascii=False),
             json.dumps({"study_id": "out", "report": "x", "images": ["../elsewhere.png"]}),
             json.dumps({"report": "no id"}),
             json.dumps({"study_id": "last", "report": "IMPRESSION: Normal."})]
    path = tmp_path / "m.jsonl"
    path.write_bytes(("\r\n".join(lines[:3]) + "\n" + "\n".join(lines[3:]) + "\n").encode("utf-8"))
    whole = [s.to_dict() for s in iter_manifest(str(path))]
    assert len(whole) == 7 and whole[1]["problem"].startswith("not JSON") and whole[1]["study_id"] == "m.jsonl:3"
    for size in (1, 2, 3, 5, 100):
        slices = manifest_slices(str(path), size)
        assert sum(s.lines for s in slices) == len(lines) and slices[-1].end == os.path.getsize(path)
        got = [s.to_dict() for sl in slices for s in iter_manifest_slice(sl)]
        assert got == whole, size
    with pytest.raises(Exception, match="at least one line"):
        manifest_slices(str(path), 0)


def test_synthetic_slices_leave_only_the_truth_out(tmp_path):
    rec = {"study_id": "S1", "modality": "CT", "body_part": "CHEST", "sex": "F", "report": "FINDINGS: Nodule.",
           "findings": [{"type": "nodule", "boxes": [{"x1": 1, "y1": 2, "x2": 3, "y2": 4, "slice": 0}]}],
           "images": []}
    path = tmp_path / "manifest.jsonl"
    path.write_text(json.dumps(rec) + "\n", encoding="utf-8")
    (full,) = list(iter_manifest(str(path)))
    (lean,) = list(iter_manifest_slice(manifest_slices(str(path), 10)[0], truth=False))
    assert full.truth is not None and lean.truth is None
    assert lean.regions == full.regions and len(lean.regions) == 1
    assert {**full.to_dict(), "truth": None} == lean.to_dict()


def test_folder_units_read_as_iter_folder(tmp_path):
    root = tmp_path / "studies"
    for name, files in (("b", {"r.txt": "FINDINGS: Normal."}), ("a", {"r.txt": "x", "s.txt": "y"}), ("c", {})):
        (root / name).mkdir(parents=True)
        for f, text in files.items():
            (root / name / f).write_text(text)
    (root / ".hidden").mkdir()
    (root / "notes.txt").write_text("not a study")
    os.symlink(root / "b", root / "d")
    assert folder_names(str(root)) == ["a", "b", "c", "d"]
    assert [folder_study(str(root), n) for n in folder_names(str(root))] == list(iter_folder(str(root)))
    units = plan_units(str(root), 3)
    assert [u.size for u in units] == [1, 1, 1, 1]  # a run's last units are small (runner._tapered)
    assert [s.study_id for u in units for s in u.read()] == ["a", "b", "c", "d"]


def test_plan_never_parses_a_jsonl_manifest(tmp_path, monkeypatch):
    manifest = _manifest(tmp_path)
    monkeypatch.setattr(json, "loads", lambda *a, **k: (_ for _ in ()).throw(AssertionError("parsed")))
    units = plan_units(manifest, 12)
    # units of 12 lines, then the last 8 in quarter units (the two workers finish together); nothing parsed
    assert [u.size for u in units] == [12] * 6 + [9] + [3] * 8 and all(u.slice is not None for u in units)
    assert all(a.slice.end == b.slice.start for a, b in zip(units, units[1:]))


def test_tapered_units_cover_the_input_once():
    for n in range(0, 40):
        groups = runner._tapered(list(range(n)), 4)
        assert [x for g in groups for x in g] == list(range(n))
        assert all(len(g) == 1 for g in groups[-min(n, runner._TAIL):]) and all(len(g) <= 4 for g in groups)


def test_two_workers_write_what_one_writes(tmp_path, monkeypatch):
    manifest = _manifest(tmp_path)
    one, two = str(tmp_path / "one.sqlite"), str(tmp_path / "two.sqlite")
    a = audit(manifest, one, workers=1, progress=False, batch_size=8, cache=False)
    # the parent of a pool never writes a result: a parent whose record_batch raises still audits everything
    monkeypatch.setattr(Store, "record_batch", lambda *a, **k: (_ for _ in ()).throw(AssertionError("parent wrote")))
    b = audit(manifest, two, workers=2, progress=False, batch_size=8, cache=False)
    monkeypatch.undo()
    assert (a.studies, a.flagged, a.failures, a.by_type) == (b.studies, b.flagged, b.failures, b.by_type)
    assert a.studies == 105 and a.flagged >= 30 and b.worker_cpu > 0 and a.worker_cpu == 0
    assert _flag_set(one) == _flag_set(two) and len(_flag_set(one)) >= 30
    for db in (one, two):
        assert _count(db, "SELECT COUNT(*) FROM results") == 105
        assert _count(db, "SELECT COUNT(*) FROM chain WHERE kind = 'flag'") == _count(db, "SELECT COUNT(*) FROM flags")
        with Store(db) as s:
            assert s.verify().ok, s.verify()
    again = audit(manifest, two, workers=2, progress=False, batch_size=8, cache=False)
    assert again.studies == 0 and again.skipped_done == 105 and again.duplicates == 0
    # an outside edit of a worker-written store is still named
    con = sqlite3.connect(two, isolation_level=None)
    for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type='trigger'").fetchall():
        con.execute(f'DROP TRIGGER "{name}"')
    fid = con.execute("SELECT MIN(id) FROM flags").fetchone()[0]
    con.execute("UPDATE flags SET confidence = 0.01 WHERE id = ?", (fid,))
    con.close()
    with Store(two, check_triggers=False) as s:
        s.restore_triggers()
        assert any(p.startswith(f"flag {fid}: differs") for p in s.verify().chain_problems)


def test_a_unit_whose_studies_are_partly_done_checks_only_the_rest(tmp_path):
    manifest = _manifest(tmp_path)
    db = str(tmp_path / "a.sqlite")
    first = audit(manifest, db, workers=1, progress=False, limit=30, cache=False)
    assert first.studies == 30
    rest = audit(manifest, db, workers=2, progress=False, batch_size=16, cache=False)
    assert rest.skipped_done == 30 and rest.studies == 75 and rest.duplicates == 0
    ref = str(tmp_path / "ref.sqlite")
    audit(manifest, ref, workers=1, progress=False, cache=False)
    assert _flag_set(db) == _flag_set(ref)


@pytest.mark.slow
def test_two_worker_audit_killed_resumes_without_loss_or_duplicates(tmp_path):
    manifest = _manifest(tmp_path, copies=12)  # 1,260 studies
    db = str(tmp_path / "k.sqlite")
    proc = subprocess.Popen([sys.executable, "-m", "medmm.cli", "audit", manifest, "--db", db, "--workers", "2",
                             "--quiet", "--no-cache"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while _count(db, "SELECT COUNT(*) FROM results") < 100 and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # a worker in the middle of a unit finishes and commits it, then finds its parent gone and exits
    last, stable = -1, 0
    while stable < 20 and time.time() < deadline + 60:
        n = _count(db, "SELECT COUNT(*) FROM results")
        stable = stable + 1 if n == last else 0
        last = n
        time.sleep(0.1)
    assert 0 < last < 1260, last
    resumed = audit(manifest, db, workers=2, progress=False, cache=False)
    assert resumed.skipped_done == last and resumed.studies + resumed.failures == 1260 - last
    assert resumed.duplicates == 0
    assert _count(db, "SELECT COUNT(*) FROM results") == 1260
    assert _count(db, "SELECT COUNT(*) FROM (SELECT study_key FROM results GROUP BY study_key HAVING COUNT(*) > 1)") == 0
    ref = str(tmp_path / "ref.sqlite")
    audit(manifest, ref, workers=1, progress=False, cache=False)
    assert _flag_set(db) == _flag_set(ref)
    assert _count(db, "SELECT COUNT(*) FROM flags") == _count(ref, "SELECT COUNT(*) FROM flags")
    with Store(db) as s:
        assert s.verify().ok


def test_default_unit_sizes():
    assert runner.default_batch_size("rules") == 64 and runner.default_batch_size("vlm") == 8


def test_csv_and_folder_inputs_on_two_workers(tmp_path):
    """A CSV manifest (read by the parent: a quoted field may hold a line break) and a folder input (groups of
    study folders listed by the workers) give the same results on 2 workers as on 1."""
    import csv

    rows = [json.loads(line) for line in open(_manifest(tmp_path), encoding="utf-8")][:40]
    path = tmp_path / "m.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["study_id", "report"])
        w.writeheader()
        for r in rows:
            w.writerow({"study_id": r["study_id"], "report": r["report"]})
    folder = tmp_path / "studies"
    for r in rows:
        (folder / r["study_id"].replace("#", "_")).mkdir(parents=True)
        (folder / r["study_id"].replace("#", "_") / "report.txt").write_text(r["report"], encoding="utf-8")
    for src in (str(path), str(folder)):
        one, two = str(tmp_path / "one.sqlite"), str(tmp_path / "two.sqlite")
        for db in (one, two):
            for side in ("", "-wal", "-shm"):
                if os.path.exists(db + side):
                    os.unlink(db + side)
        a = audit(src, one, workers=1, progress=False, batch_size=8, cache=False)
        b = audit(src, two, workers=2, progress=False, batch_size=8, cache=False)
        assert a.studies == b.studies == 40 and b.worker_cpu > 0, src
        assert _flag_set(one) == _flag_set(two) and _flag_set(one), src
