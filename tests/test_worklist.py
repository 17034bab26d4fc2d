"""The worklist in SQL (medmm.audit.worklist): pages, filters, counts, states and navigation agree with
the same questions answered in Python over every row; the batched writer; the v7 migration."""

from __future__ import annotations

import random
import sqlite3
from dataclasses import dataclass, field

import pytest

from medmm.audit import chain
from medmm.audit.store import SCHEMA_VERSION, Store, StudyRecord
from medmm.audit.worklist import STATES, WorklistFilter, sort_key, state_of
from medmm.runs import RunConfig

TYPES = ("laterality", "negation", "measurement", "metadata")
MODS = ("CT", "MR", "CR", "US")


@dataclass(frozen=True)
class _Flag:
    type: str
    confidence: float
    start: int = 0
    end: int = 4
    text: str = "left"
    explanation: str = "x"
    evidence: str = "text"
    rule: str = ""


@dataclass(frozen=True)
class _Result:
    has_error: bool
    score: float
    flags: tuple = ()
    notes: list = field(default_factory=list)


def _entries(n: int, seed: int = 0, prefix: str = "s") -> list[tuple]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        rec = StudyRecord(f"{prefix}{i}", None, {"modality": MODS[i % 4]}, f"FINDINGS: left {i}.",
                          accession_number=f"A{i:05d}", exam_date="2026-01-02", exam_description="CT CHEST")
        if i % 17 == 5:
            out.append((rec, None, ("header", "unreadable")))
            continue
        flags = tuple(_Flag(rng.choice(TYPES), round(rng.uniform(0.2, 0.95), 2)) for _ in range(rng.choice((0, 0, 1, 2))))
        # equal confidences and scores on purpose: the study key breaks the tie
        score = max((f.confidence for f in flags), default=round(rng.choice((0.0, 0.1, 0.1, 0.2)), 2))
        out.append((rec, _Result(bool(flags), score, flags), None))
    return out


@pytest.fixture()
def store(tmp_path):
    s = Store(str(tmp_path / "w.sqlite"))
    run_id, key = s.start_run(RunConfig.build("report-check", checker="rules", t="worklist"))
    statuses = s.record_batch(run_id, key, _entries(120))
    assert statuses.count("failure") == 7 and statuses.count("result") == 113
    assert s.record_batch(run_id, key, _entries(5)) == ["duplicate"] * 5  # nothing written twice
    # reviews: a verdict, all flags of one study, one flag of a two-flag study
    flagged = [(k, n) for k, n in s.conn.execute("SELECT study_key, n_flags FROM results WHERE n_flags > 0 ORDER BY study_key")]
    two = next(k for k, n in flagged[1:] if n == 2)
    one = next(k for k, n in flagged[1:] if n == 1)
    s.add_review("dr", "true_error", study_key=flagged[0][0])
    s.add_review("dr", "false_positive", flag_id=s.study(one)["flags"][0]["id"])
    s.add_review("dr", "uncertain", flag_id=s.study(two)["flags"][0]["id"])
    s.add_review("dr", "true_error", flag_id=s.study(two)["flags"][0]["id"])  # a changed mind: still one flag decided
    yield s
    s.close()


def _python_rows(s: Store) -> list[dict]:
    """The worklist computed in Python from the raw tables (the reference)."""
    rows = []
    for key, status, score in s.conn.execute("SELECT study_key, status, score FROM results"):
        flags = s.conn.execute("SELECT id, type, confidence FROM flags WHERE study_key=?", (key,)).fetchall()
        decided = {f for (f,) in s.conn.execute("SELECT DISTINCT flag_id FROM reviews WHERE study_key=? AND flag_id "
                                                "IS NOT NULL", (key,))}
        verdict = s.conn.execute("SELECT 1 FROM reviews WHERE study_key=? AND flag_id IS NULL", (key,)).fetchone()
        mod = s.conn.execute("SELECT modality FROM studies WHERE key=?", (key,)).fetchone()[0]
        top = max((f[2] for f in flags), default=None)
        rows.append({"key": key, "top": top, "types": {f[1] for f in flags}, "modality": mod,
                     "state": state_of(status, len(flags), len(decided & {f[0] for f in flags}), bool(verdict)),
                     "order": (-(top if top is not None else -1) if status == "done" else 9,
                               -(score if score is not None else -1), key)})
    return sorted(rows, key=lambda r: r["order"])


def _keep(r: dict, flt: WorklistFilter) -> bool:
    return ((not flt.types or bool(r["types"] & set(flt.types)))
            and (flt.min_confidence <= 0 or (r["top"] or 0) >= flt.min_confidence)
            and (not flt.modalities or r["modality"] in flt.modalities)
            and (not flt.states or r["state"] in flt.states))


FILTERS = [WorklistFilter(), WorklistFilter(types=("laterality",)), WorklistFilter(types=("negation", "metadata")),
           WorklistFilter(min_confidence=0.6), WorklistFilter(modalities=("US", "CT")),
           WorklistFilter(states=("flagged, not reviewed",)), WorklistFilter(states=("reviewed", "partly reviewed")),
           WorklistFilter(states=("no flags", "check failed")),
           WorklistFilter(types=("laterality",), min_confidence=0.5, modalities=("CT", "CR"),
                          states=("flagged, not reviewed", "reviewed"))]


@pytest.mark.parametrize("flt", FILTERS, ids=lambda f: repr(f)[15:60])
def test_pages_and_counts_equal_the_reference(store, flt):
    ref = [r for r in _python_rows(store) if _keep(r, flt)]
    wl = store.worklist_view()
    seen, after = [], None
    while True:  # keyset paging, 7 rows a page: every row once, in order
        page = wl.page(flt, after=after, limit=7)
        seen += [r.study_key for r in page.rows]
        if not page.has_next:
            break
        after = page.last_key
    assert seen == [r["key"] for r in ref]
    counts = wl.counts(flt)
    assert counts.matching == len(ref) and counts.total == 120
    base = [r for r in _python_rows(store) if _keep(r, WorklistFilter(flt.types, flt.min_confidence, flt.modalities))]
    assert counts.by_state == {s: sum(r["state"] == s for r in base) for s in STATES}
    if len(ref) > 7:  # previous page of the second page is the first; the last page ends the list
        second = wl.page(flt, after=wl.page(flt, limit=7).last_key, limit=7)
        assert [r.study_key for r in wl.page(flt, before=second.first_key, limit=7).rows] == seen[:7]
        assert [r.study_key for r in wl.last_page(flt, limit=7).rows] == seen[-7:]


def test_states_read_as_what_they_are(store):
    rows = {r.study_key: r for r in store.worklist_view().all_rows()}
    states = {r.state for r in rows.values()}
    assert states == set(STATES)  # every state present in this store
    assert all(r.state == "no flags" for r in rows.values() if r.n_flags == 0 and r.status == "done" and not r.n_reviews)
    assert all(r.state == "flagged, not reviewed" for r in rows.values() if r.n_flags and not r.n_reviews)
    partly = [r for r in rows.values() if r.state == "partly reviewed"]
    assert len(partly) == 1 and partly[0].n_flags == 2 and partly[0].n_decided == 1
    assert all(r.accession_number and r.exam_date == "2026-01-02" for r in rows.values())


def test_counts_follow_a_new_review(store):
    wl = store.worklist_view()
    before = wl.counts()
    key = wl.page(WorklistFilter(states=("flagged, not reviewed",)), limit=1).rows[0].study_key
    store.add_review("dr", "true_error", study_key=key)
    after = store.worklist_view().counts()
    assert after.by_state["flagged, not reviewed"] == before.by_state["flagged, not reviewed"] - 1
    assert after.by_state["reviewed"] == before.by_state["reviewed"] + 1


def test_neighbours_position_and_next_unreviewed_flag(store):
    wl = store.worklist_view()
    keys = [r["key"] for r in _python_rows(store)]
    assert wl.neighbour(keys[10]) == keys[11] and wl.neighbour(keys[10], step=-1) == keys[9]
    assert wl.neighbour(keys[-1]) is None and wl.position(keys[10]) == 11
    pending = [r["key"] for r in _python_rows(store) if r["state"] in ("flagged, not reviewed", "partly reviewed")]
    first = keys[0]
    nxt = wl.neighbour(first, unreviewed_flag=True)
    assert nxt == next(k for k in pending if keys.index(k) > 0)
    # from the last flagged study it wraps to the first with an undecided flag
    assert wl.neighbour(pending[-1], unreviewed_flag=True, wrap=True) == pending[0]
    flt = WorklistFilter(modalities=("MR",))
    mr = [r["key"] for r in _python_rows(store) if r["modality"] == "MR"]
    assert wl.neighbour(mr[2], flt) == mr[3] and wl.position(mr[3], flt) == 4
    assert wl.position(keys[0], flt) in (None, 1)


def test_sort_key_orders_riskiest_first():
    assert sort_key("S1", 0.9, 0.9) < sort_key("S0", 0.8, 0.99) < sort_key("S0", None, 0.3) < sort_key("S0", None, None, True)
    assert sort_key("S1", 0.5, 0.5) > sort_key("S0", 0.5, 0.5)  # ties: the study key


def test_superseded_report_version_leaves_the_worklist(tmp_path):
    with Store(str(tmp_path / "v.sqlite")) as s:
        run_id, key = s.start_run(RunConfig.build("report-check", checker="rules", t="versions"))
        s.record_batch(run_id, key, _entries(10))
        rec = StudyRecord("s3-v2", None, {"modality": "CT"}, "FINDINGS: corrected.", supersedes=s.study_key("s3"))
        assert s.record_batch(run_id, key, [(rec, _Result(False, 0.1), None)]) == ["result"]
        wl = s.worklist_view()
        keys = [r.study_key for r in wl.all_rows()]
        assert s.study_key("s3") not in keys and s.study_key("s3-v2") in keys
        assert wl.counts().total == 10 == len(keys)
        assert sum(wl.counts().by_state.values()) == 10


def test_v6_store_migrates_to_v7_with_the_same_worklist(tmp_path):
    db = str(tmp_path / "old.sqlite")
    with Store(db) as s:
        run_id, key = s.start_run(RunConfig.build("report-check", checker="rules", t="migrate"))
        s.record_batch(run_id, key, _entries(40))
        expected = [(r.study_key, r.state, r.flag_types, r.modality) for r in s.worklist_view().all_rows()]
    # make it the v6 store an earlier medmm wrote: no worklist columns, indexes or table
    con = sqlite3.connect(db)
    con.executescript("""
        DROP INDEX results_worklist; DROP INDEX reviews_study; DROP TABLE worklist_modalities;
        ALTER TABLE results DROP COLUMN sort_key; ALTER TABLE results DROP COLUMN n_flags;
        ALTER TABLE results DROP COLUMN top_confidence; ALTER TABLE results DROP COLUMN flag_types;
        ALTER TABLE results DROP COLUMN modality;
        DROP TRIGGER chain_flags; ALTER TABLE flags DROP COLUMN model; ALTER TABLE flags DROP COLUMN region;
        ALTER TABLE flags DROP COLUMN related;
        UPDATE meta SET value='6' WHERE key='schema_version';
    """)
    con.execute(chain.TRIGGERS["chain_flags"])  # the flag chain trigger as v6 made it (v9 re-creates it)
    con.close()
    with Store(db) as s:
        assert s.schema_version == SCHEMA_VERSION and not s.trigger_problems()
        got = [(r.study_key, r.state, r.flag_types, r.modality) for r in s.worklist_view().all_rows()]
        assert got == expected
        assert s.worklist_view().modalities() == sorted(MODS)
        assert s.verify().ok
