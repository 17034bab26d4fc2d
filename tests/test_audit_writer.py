"""The audit's single writer commits in batches (a crash repeats at most the open batch), and audits go
through the shared result cache keyed by the run identity and what the check reads."""

from __future__ import annotations

import json
import os
import sqlite3

import pytest

from medmm.audit import runner
from medmm.audit.runner import audit
from medmm.audit.store import Store
from medmm.reports.corpus import read_corpus
from medmm.reports.inject import inject_dataset
from medmm.reports.taxonomy import TEXT_HEADER_TYPES
from medmm.runs import ResultCache

HAND = os.path.join(os.path.dirname(__file__), "data", "hand_reports.txt")


def _manifest(tmp_path, name: str = "m.jsonl", edit: int | None = None) -> str:
    rows = read_corpus(HAND).rows
    path = tmp_path / name
    with open(path, "w", encoding="utf-8") as fh:
        for n, r in enumerate(inject_dataset(rows, rate=0.5, types=TEXT_HEADER_TYPES, seed=0)):
            report = r["report"] + (" Addendum." if n == edit else "")
            fh.write(json.dumps({"study_id": f"{r['id']}", "report": report, "header": r["header"]}) + "\n")
    return str(path)


def _flags(db: str) -> list[tuple]:
    con = sqlite3.connect(db)
    return sorted(con.execute('SELECT r.text, f.type, f.start, f."end", f.confidence FROM flags f '
                              "JOIN reports r ON r.study_key = f.study_key").fetchall())


def test_writer_commits_per_batch_and_a_crash_repeats_only_the_open_batch(tmp_path, monkeypatch):
    manifest = _manifest(tmp_path)
    db = str(tmp_path / "a.sqlite")
    monkeypatch.setattr(runner, "WRITE_BATCH", 10)
    monkeypatch.setattr(runner, "WRITE_SECONDS", 1e9)
    calls = []
    real = Store.record_batch

    def crashing(self, run_id, config_key, entries):
        calls.append(len(entries))
        if len(calls) == 4:  # the writer dies before its 4th commit
            raise KeyboardInterrupt
        return real(self, run_id, config_key, entries)

    monkeypatch.setattr(Store, "record_batch", crashing)
    with pytest.raises(KeyboardInterrupt):
        audit(manifest, db, workers=1, progress=False, cache=False)
    assert calls == [10, 10, 10, 10]  # one transaction per 10 studies, not one per study
    with Store(db) as s:
        assert s.counts()["results"] == 30  # the three committed batches, nothing of the open one
    monkeypatch.setattr(Store, "record_batch", real)
    resumed = audit(manifest, db, workers=1, progress=False, cache=False)
    assert resumed.skipped_done == 30 and resumed.studies + resumed.failures == 75 and resumed.duplicates == 0
    ref = str(tmp_path / "ref.sqlite")
    audit(manifest, ref, workers=1, progress=False, cache=False)
    assert _flags(db) == _flags(ref)


def test_writer_commits_after_half_a_second_whatever_the_batch(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "WRITE_SECONDS", 0.0)  # every result is older than the limit: one commit each
    sizes = []
    real = Store.record_batch
    monkeypatch.setattr(Store, "record_batch", lambda self, *a: sizes.append(len(a[2])) or real(self, *a))
    s = audit(_manifest(tmp_path), str(tmp_path / "t.sqlite"), workers=1, progress=False, cache=False)
    assert s.studies == 105 and set(sizes) == {1}


def test_unchanged_study_is_not_checked_again_through_the_result_cache(tmp_path, monkeypatch):
    manifest = _manifest(tmp_path)
    cache = str(tmp_path / "shared.cache.sqlite")
    first = audit(manifest, str(tmp_path / "a.sqlite"), workers=1, progress=False, cache=cache)
    assert first.studies == 105 and first.cached == 0
    with ResultCache(cache) as c:
        assert c.counts(runner.run_config().key)["ok"] == 105
    # a second store, the same cache: no study reaches a checker (one that raises would fail them all)
    monkeypatch.setattr(runner, "checker_for", lambda run: (_ for _ in ()).throw(AssertionError("checked again")))
    second = audit(manifest, str(tmp_path / "b.sqlite"), workers=1, progress=False, cache=cache)
    assert second.studies == 105 and second.cached == 105 and second.failures == 0
    assert _flags(str(tmp_path / "a.sqlite")) == _flags(str(tmp_path / "b.sqlite"))
    monkeypatch.undo()
    # a changed report is checked; a changed configuration (threshold) checks everything
    edited = audit(_manifest(tmp_path, "e.jsonl", edit=3), str(tmp_path / "c.sqlite"), workers=1, progress=False,
                   cache=cache)
    assert edited.studies == 105 and edited.cached == 104
    stricter = audit(manifest, str(tmp_path / "d.sqlite"), workers=1, progress=False, cache=cache, threshold=0.9)
    assert stricter.cached == 0


def test_default_cache_beside_the_store_and_private(tmp_path):
    db = str(tmp_path / "audit.sqlite")
    audit(_manifest(tmp_path), db, workers=2, progress=False, batch_size=16)
    path = str(tmp_path / "audit.cache.sqlite")
    assert runner.default_cache(db) == path and os.path.isfile(path)
    assert os.stat(path).st_mode & 0o077 == 0
    again = audit(_manifest(tmp_path), str(tmp_path / "audit2.sqlite"), workers=1, progress=False, cache=path)
    assert again.cached == again.studies == 105
