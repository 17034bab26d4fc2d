"""Batch audits into the review store: resume after SIGKILL, concurrent writers, bad studies, Ray, export."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import pandas as pd
import pytest

from medmm.audit.runner import audit, export
from medmm.audit.store import Store, StoreError
from medmm.reports.corpus import read_corpus
from medmm.reports.inject import inject_dataset
from medmm.reports.taxonomy import TEXT_HEADER_TYPES

HAND = os.path.join(os.path.dirname(__file__), "data", "hand_reports.txt")


def _manifest(tmp_path, copies: int = 1, name: str = "manifest.jsonl") -> str:
    """A manifest of hand-written reports, half with an injected error (no images: fast)."""
    rows = read_corpus(HAND).rows
    path = tmp_path / name
    with open(path, "w", encoding="utf-8") as fh:
        for c in range(copies):
            for r in inject_dataset(rows, rate=0.5, types=TEXT_HEADER_TYPES, seed=c):
                fh.write(json.dumps({"study_id": f"{r['id']}-{c}", "report": r["report"], "header": r["header"]}) + "\n")
    return str(path)


def _flag_set(db: str) -> set[tuple]:
    con = sqlite3.connect(db)
    rows = con.execute('SELECT r.text, f.type, f.start, f."end" FROM flags f JOIN reports r ON r.study_key = f.study_key')
    return set(rows.fetchall())


def test_audit_store_and_resume(tmp_path):
    manifest = _manifest(tmp_path)
    db = str(tmp_path / "a.sqlite")
    first = audit(manifest, db, workers=1, progress=False)
    assert first.studies == 105 and first.flagged >= 30 and first.failures == 0
    second = audit(manifest, db, workers=2, progress=False)
    assert second.studies == 0 and second.skipped_done == 105
    with Store(db) as s:
        counts = s.counts()
        assert counts["results"] == 105 and counts["runs"] == 2
        keys = [r[0] for r in s.conn.execute("SELECT key FROM studies")]
        assert all(k.startswith("S") and len(k) == 17 for k in keys)
        # the raw study identifiers (e.g. "hand_reports.txt#3-0") appear in no column of any table
        ids = [json.loads(line)["study_id"] for line in open(manifest, encoding="utf-8")]
        values = [str(v) for table in ("studies", "reports", "runs", "results", "flags", "failures")
                  for row in s.conn.execute(f"SELECT * FROM {table}") for v in row if v is not None]
        assert values and not [i for i in ids if any(i in v for v in values)]


def test_changed_configuration_rechecks_instead_of_skipping(tmp_path):
    manifest = _manifest(tmp_path)
    db = str(tmp_path / "a.sqlite")
    first = audit(manifest, db, workers=1, progress=False, limit=10)
    assert first.studies == 10
    same = audit(manifest, db, workers=1, progress=False, limit=10)
    assert same.studies == 10 and same.skipped_done == 10  # the next ten; the first ten were done
    stricter = audit(manifest, db, workers=1, progress=False, threshold=0.9, limit=5)
    assert stricter.studies == 5 and stricter.skipped_done == 0  # a new identity: nothing is done under it
    with Store(db) as s:
        configs = s.configurations()
        assert len(configs) == 2 and configs[0]["config"]["threshold"] == 0.9
        # the worklist shows one configuration at a time (the newest by default), never a mix
        assert len(s.worklist()) == 5 and len(s.worklist(configs[1]["config_key"])) == 20


def test_reviews_are_append_only_and_latest_wins(tmp_path):
    db = str(tmp_path / "a.sqlite")
    audit(_manifest(tmp_path), db, workers=1, progress=False)
    with Store(db) as s:
        flag_id = s.conn.execute("SELECT id FROM flags ORDER BY id LIMIT 1").fetchone()[0]
        s.add_review("dr_a", "false_positive", flag_id=flag_id, comment="fine")
        s.add_review("dr_a", "true_error", flag_id=flag_id, comment="changed my mind")
        assert s.latest_decision(flag_id) == "true_error"
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            s.conn.execute("UPDATE reviews SET decision='uncertain'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            s.conn.execute("DELETE FROM reviews")
        with pytest.raises(StoreError, match="decision"):
            s.add_review("dr_a", "maybe", flag_id=flag_id)
    out = tmp_path / "reviewed.csv"
    assert export(db, str(out), reviewed_only=True) == 1
    row = pd.read_csv(out).iloc[0]
    assert row["decision"] == "true_error" and row["reviewer"] == "dr_a"
    redacted = tmp_path / "redacted.parquet"
    n_all = export(db, str(redacted), redact=True)
    table = pd.read_parquet(redacted)
    assert n_all == len(table) > 1 and not {"text", "explanation", "source_path", "reviewer"} & set(table.columns)
    assert {"study_key", "type", "confidence", "decision"} <= set(table.columns)
    jl = tmp_path / "all.jsonl"
    assert export(db, str(jl)) == n_all
    assert all("type" in json.loads(line) for line in jl.read_text().splitlines())


def _medmm(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "medmm.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            **kw)


def _results(db: str) -> int:
    try:
        con = sqlite3.connect(db, timeout=30)
        return con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    except sqlite3.DatabaseError:
        return 0


@pytest.mark.slow
def test_resume_after_sigkill_loses_and_repeats_nothing(tmp_path):
    manifest = _manifest(tmp_path, copies=12)  # 1,260 studies
    db = str(tmp_path / "k.sqlite")
    proc = _medmm("audit", manifest, "--db", db, "--workers", "1", "--quiet")
    deadline = time.time() + 60
    while _results(db) < 100 and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _results(db)
    assert 0 < before < 1260, before
    flags_before = sqlite3.connect(db).execute("SELECT COUNT(*) FROM flags").fetchone()[0]
    resumed = audit(manifest, db, workers=1, progress=False)
    assert resumed.skipped_done == before and resumed.studies == 1260 - before
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 1260
    assert con.execute("SELECT COUNT(*) FROM (SELECT study_key FROM results GROUP BY study_key HAVING COUNT(*) > 1)"
                       ).fetchone()[0] == 0
    # the flags equal those of an uninterrupted run
    ref = str(tmp_path / "ref.sqlite")
    audit(manifest, ref, workers=1, progress=False)
    assert _flag_set(db) == _flag_set(ref)
    assert con.execute("SELECT COUNT(*) FROM flags").fetchone()[0] == \
        sqlite3.connect(ref).execute("SELECT COUNT(*) FROM flags").fetchone()[0] >= flags_before


REVIEWER = """
import sqlite3, sys, time
from medmm.audit.store import Store
db, n = sys.argv[1], int(sys.argv[2])
written = 0
s = Store(db)
deadline = time.time() + 120
while written < n and time.time() < deadline:
    ids = [r[0] for r in s.conn.execute("SELECT id FROM flags ORDER BY id LIMIT ?", (n,))]
    for fid in ids[written:]:
        s.add_review("dr_concurrent", "uncertain", flag_id=fid, comment=str(written))
        written += 1
    time.sleep(0.01)
print(written)
"""


@pytest.mark.slow
def test_two_audits_and_a_reviewer_at_once(tmp_path):
    manifest = _manifest(tmp_path, copies=4)  # 420 studies
    db = str(tmp_path / "c.sqlite")
    Store(db).close()
    a = _medmm("audit", manifest, "--db", db, "--workers", "1", "--quiet")
    b = _medmm("audit", manifest, "--db", db, "--workers", "2", "--quiet")
    r = subprocess.Popen([sys.executable, "-c", REVIEWER, db, "40"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for p in (a, b):
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()
    out, err = r.communicate(timeout=300)
    assert r.returncode == 0, err.decode()
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 420
    assert con.execute("SELECT COUNT(DISTINCT study_key) FROM results").fetchone()[0] == 420
    ref = str(tmp_path / "ref.sqlite")
    audit(manifest, ref, workers=1, progress=False)
    n_ref = sqlite3.connect(ref).execute("SELECT COUNT(*) FROM flags").fetchone()[0]
    assert con.execute("SELECT COUNT(*) FROM flags").fetchone()[0] == n_ref  # nothing duplicated or lost
    assert _flag_set(db) == _flag_set(ref)
    assert int(out.decode().strip()) == 40
    assert con.execute("SELECT COUNT(*) FROM reviews WHERE reviewer='dr_concurrent'").fetchone()[0] == 40


def test_bad_studies_are_recorded_not_fatal(tmp_path, make_series):
    root = tmp_path / "studies"
    good, _, _ = make_series(n=2, rows=8, cols=8, name="g")
    shutil.copytree(good, root / "ok" / "ct")
    (root / "ok" / "report.txt").write_text("FINDINGS: Small left effusion.\n\nIMPRESSION: Small right effusion.")
    (root / "no_report").mkdir(parents=True)
    (root / "two_reports").mkdir()
    (root / "two_reports" / "a.txt").write_text("FINDINGS: x")
    (root / "two_reports" / "b.txt").write_text("FINDINGS: y")
    (root / "empty").mkdir()
    (root / "empty" / "report.txt").write_text("   ")
    (root / "corrupt").mkdir()
    (root / "corrupt" / "report.txt").write_bytes(b"FINDINGS: No pneumothorax.\xff\xfe")
    (root / "corrupt" / "broken.dcm").write_bytes(b"\x00" * 200)
    db = str(tmp_path / "b.sqlite")
    s = audit(str(root), db, workers=1, progress=False)
    assert s.studies == 2 and s.failures == 3 and s.flagged == 1
    with Store(db) as st:
        reasons = {r[0]: r[1] for r in st.conn.execute("SELECT stage, reason FROM failures")}
        assert {"input", "report"} == set(reasons)
        text = " | ".join(r[0] for r in st.conn.execute("SELECT reason FROM failures"))
        assert "no report .txt" in text and "2 report .txt files" in text and "empty report" in text
        header = st.conn.execute("SELECT modality FROM studies WHERE source_path LIKE '%ok'").fetchone()
        assert header == ("CT",)  # header facts read from the DICOM series (headers only)


def test_ray_engine_gives_the_same_flags_as_local(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    manifest = _manifest(tmp_path)
    local, ray_db = str(tmp_path / "l.sqlite"), str(tmp_path / "r.sqlite")
    audit(manifest, local, workers=2, progress=False)
    summary = audit(manifest, ray_db, workers=2, engine="ray", progress=False)
    assert summary.studies == 105
    assert _flag_set(local) == _flag_set(ray_db) and len(_flag_set(local)) >= 30


def test_store_rejects_non_store_files(tmp_path):
    bad = tmp_path / "x.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a medmm store"):
        Store(str(bad))


def test_vlm_audit_loads_its_model_once_and_keys_results_by_its_fingerprint(tmp_path, monkeypatch):
    from medmm.audit import runner

    monkeypatch.setattr(runner, "_VLMS", {})
    monkeypatch.setattr(runner, "_CHECKERS", {})
    loads = []
    import medmm.models as models

    real_load = models.load
    monkeypatch.setattr(models, "load", lambda spec, *a, **k: loads.append(spec) or real_load(spec, *a, **k))
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps({"study_id": f"s{i}", "report": "FINDINGS: Small left effusion.\n\n"
                                            "IMPRESSION: Small right effusion."}) + "\n" for i in range(3)))
    db = str(tmp_path / "v.sqlite")
    summary = audit(str(manifest), db, checker="ensemble", model="tiny:llava", workers=1, progress=False)
    assert summary.studies == 3 and summary.failures == 0
    assert loads == ["tiny:llava"]  # fingerprinted for the run identity and used for checking: one load
    with Store(db) as s:
        (cfg,) = s.configurations()
        assert cfg["checker"] == "ensemble" and cfg["config"]["model"] == runner._VLMS["tiny:llava"].fingerprint()
