"""The review worklist in SQL: one page, the counts and the neighbours of a study, never the whole list.

A hospital-year is about a million studies. The review app reruns its script on every click
(Next, Save, a filter), so whatever it asks the store for must not grow with the store: it asks
for **one page** (50 rows) and **the counts**, both computed by SQLite on indexes.

- **Order**: riskiest first — the most confident flag (flag confidences are calibrated), then the
  study score, then the study key. The order is stored with each result as a text ``sort_key``
  (schema v6, written with the result in the same transaction; results are append-only, so it
  never changes) and indexed with the configuration: ``results_worklist(config_key, sort_key)``.
  Its first field is a *rank*: ``1 - top confidence`` (``0.000000``..``1.000000``) for a flagged
  study, ``2`` for a study checked without flags, ``3`` for a failed check — so "flagged",
  "no flags", "failed" and "confidence at least c" are ranges of the index.
- **Paging** is keyset paging (``sort_key > last key of the page``): page 20,000 costs what page 1
  costs; an ``OFFSET`` would walk every row before it.
- **Counts**: the part that does not depend on reviews is cached per store and *results
  version* (``MAX(rowid)`` of the append-only results table: new results, new version); the part
  that does (a decision moves a study from "flagged, not reviewed" to "reviewed") is computed from
  the reviewed studies only, found through ``reviews_study`` (reviews are few: a team reviews a
  small share of a hospital-year).
- **Status** reads as what it is (:data:`STATES`): a study without flags is "no flags", not
  "unreviewed"; a flagged study nobody decided is "flagged, not reviewed"; some of its flags
  decided is "partly reviewed"; every flag decided or a study verdict is "reviewed".

A corrected report supersedes the earlier study version (``report_versions``, schema v5): the
superseded version is left out of the worklist (its result stays in the store as history).
"""

from __future__ import annotations

import bisect
import json
import sqlite3
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

PAGE_SIZE = 50
STATES = ("flagged, not reviewed", "partly reviewed", "reviewed", "no flags", "check failed")
# rank (first field of sort_key) of the three kinds of result
RANK_NO_FLAGS = 2.0
RANK_FAILED = 3.0
_FLAGGED_BELOW = "2"  # sort_key < "2": flagged
_FAILED_FROM = "3"  # sort_key >= "3": failed


def sort_key(study_key: str, top_confidence: float | None, score: float | None, failed: bool = False) -> str:
    """The stored order of a result: ascending text = riskiest first (see the module docstring)."""
    if failed:
        rank = RANK_FAILED
    elif top_confidence is None:
        rank = RANK_NO_FLAGS
    else:
        rank = 1.0 - min(1.0, max(0.0, float(top_confidence)))
    s = 1.0 - min(1.0, max(-1.0, float(score))) if score is not None else 2.0
    return f"{rank:.6f}|{s:.6f}|{study_key}"


def _min_conf_bound(min_confidence: float) -> str:
    """Upper bound (exclusive) of the sort keys whose top confidence is at least ``min_confidence``."""
    return f"{1.0 - min(1.0, max(0.0, min_confidence)):.6f}}}"  # '}' sorts after '|'


@dataclass(frozen=True)
class WorklistFilter:
    """What the reviewer narrowed the worklist to (every field optional)."""

    types: tuple[str, ...] = ()  # any of these flag types
    min_confidence: float = 0.0  # top flag confidence at least this (0: no bound, unflagged studies included)
    modalities: tuple[str, ...] = ()
    states: tuple[str, ...] = ()  # any of STATES
    run_id: int | None = None

    def __post_init__(self) -> None:
        bad = [s for s in self.states if s not in STATES]
        if bad:
            raise ValueError(f"unknown worklist state(s) {bad}: use {', '.join(STATES)}")


@dataclass(frozen=True)
class WorklistRow:
    """One study of the worklist, with what a reviewer needs to find it in the PACS."""

    study_key: str
    accession_number: str | None
    exam_date: str | None
    exam_description: str | None
    modality: str | None
    body_part: str | None
    score: float | None
    status: str  # done | failed (the check)
    run_id: int
    n_flags: int
    flag_types: tuple[str, ...]
    max_confidence: float | None
    n_reviews: int
    n_decided: int  # flags of this configuration with a decision
    verdict: bool  # a study-level decision exists
    state: str  # one of STATES
    sort_key: str


@dataclass(frozen=True)
class Page:
    rows: tuple[WorklistRow, ...]
    has_prev: bool
    has_next: bool

    @property
    def first_key(self) -> str | None:
        return self.rows[0].sort_key if self.rows else None

    @property
    def last_key(self) -> str | None:
        return self.rows[-1].sort_key if self.rows else None


@dataclass(frozen=True)
class Counts:
    total: int  # studies of the configuration (current report versions)
    matching: int  # studies the filter keeps
    by_state: dict[str, int] = field(default_factory=dict)  # under the filter's other criteria


def state_of(status: str, n_flags: int, n_decided: int, verdict: bool) -> str:
    """The status a reviewer reads (one of :data:`STATES`)."""
    if status == "failed":
        return "check failed"
    if verdict or (n_flags and n_decided >= n_flags):
        return "reviewed"
    if n_decided:
        return "partly reviewed"
    return "flagged, not reviewed" if n_flags else "no flags"


# The same rule in SQL, for filters and counts (r = results row). Cheap for a study without reviews
# (one probe of reviews_study); the decided-flag count only for reviewed studies.
_STATE_SQL = """CASE
  WHEN r.status = 'failed' THEN 'check failed'
  WHEN NOT EXISTS (SELECT 1 FROM reviews v WHERE v.study_key = r.study_key)
    THEN CASE WHEN r.n_flags > 0 THEN 'flagged, not reviewed' ELSE 'no flags' END
  WHEN EXISTS (SELECT 1 FROM reviews v WHERE v.study_key = r.study_key AND v.flag_id IS NULL) THEN 'reviewed'
  ELSE (SELECT CASE WHEN r.n_flags > 0 AND COUNT(DISTINCT v.flag_id) >= r.n_flags THEN 'reviewed'
                    WHEN COUNT(DISTINCT v.flag_id) > 0 THEN 'partly reviewed'
                    WHEN r.n_flags > 0 THEN 'flagged, not reviewed' ELSE 'no flags' END
        FROM reviews v JOIN flags f ON f.id = v.flag_id
        WHERE v.study_key = r.study_key AND f.config_key = r.config_key)
END"""
_CURRENT_SQL = "NOT EXISTS (SELECT 1 FROM report_versions rv WHERE rv.supersedes = r.study_key)"


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone() is not None


class _Memo:
    """A small LRU of computed values keyed by (store identity, question, data version): reruns of the
    app in one server process share it; a new result or review changes the version, never a stale value."""

    def __init__(self, size: int = 512) -> None:
        self._d: OrderedDict[tuple, Any] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: tuple, compute: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._d:
                self._d.move_to_end(key)
                return self._d[key]
        value = compute()
        with self._lock:
            self._d[key] = value
            while len(self._d) > self._size:
                self._d.popitem(last=False)
        return value

    def peek(self, key: tuple) -> Any:
        with self._lock:
            return self._d.get(key)

    def put(self, key: tuple, value: Any) -> None:
        with self._lock:
            self._d[key] = value
            self._d.move_to_end(key)
            while len(self._d) > self._size:
                self._d.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._d.clear()


MEMO = _Memo()


class Worklist:
    """The worklist of one store (a :class:`medmm.audit.store.Store`) and one configuration."""

    def __init__(self, store: Any, config_key: str | None) -> None:
        self.store = store
        self.conn: sqlite3.Connection = store.conn
        self.config_key = config_key
        self._ident = store.salt.hex()  # random per store: the memo never mixes two stores
        self._versions = has_versions = _has_table(self.conn, "report_versions")
        self._current = _CURRENT_SQL if has_versions else "1"

    # ------------------------------------------------------------------ versions (memo keys)
    def results_version(self) -> int:
        return int(self.conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM results").fetchone()[0])

    def reviews_version(self) -> int:
        return int(self.conn.execute("SELECT COALESCE(MAX(id), 0) FROM reviews").fetchone()[0])

    # ------------------------------------------------------------------ SQL pieces
    def _where(self, flt: WorklistFilter, with_states: bool = True, current: bool = True) -> tuple[list[str], list[Any]]:
        """Conditions (on results r) and their parameters for a filter. ``current``: leave out superseded
        report versions row by row (counts subtract them instead, driven from the few superseded rows)."""
        where, params = ["r.config_key = ?"], [self.config_key]
        if flt.min_confidence > 0:
            where.append("r.sort_key < ?")
            params.append(_min_conf_bound(flt.min_confidence))
        if flt.types:
            where.append("(" + " OR ".join("instr(r.flag_types, ?) > 0" for _ in flt.types) + ")")
            params += [f",{t}," for t in flt.types]
        if flt.modalities:  # the study's modality, copied onto its result (v7): no join
            where.append("r.modality IN (" + ", ".join("?" * len(flt.modalities)) + ")")
            params += list(flt.modalities)
        if flt.run_id is not None:
            where.append("r.run_id = ?")
            params.append(int(flt.run_id))
        if with_states and flt.states and set(flt.states) != set(STATES):
            where.append(f"({_STATE_SQL}) IN (" + ", ".join("?" * len(flt.states)) + ")")
            params += list(flt.states)
        if current:
            where.append(self._current)
        return where, params

    @staticmethod
    def _from(flt: WorklistFilter) -> str:
        return "FROM results r"

    def _count(self, where: list[str], params: list[Any]) -> int:
        """COUNT over results under ``where`` (built with ``current=False``), superseded versions subtracted."""
        n = self.conn.execute("SELECT COUNT(*) FROM results r WHERE " + " AND ".join(where), params).fetchone()[0]
        if self._versions:  # superseded versions are few: drive from them (CROSS JOIN keeps that order)
            n -= self.conn.execute("SELECT COUNT(*) FROM (SELECT DISTINCT supersedes AS k FROM report_versions "
                                   "WHERE supersedes IS NOT NULL) rv CROSS JOIN results r ON r.study_key = rv.k WHERE "
                                   + " AND ".join(where), params).fetchone()[0]
        return int(n)

    # ------------------------------------------------------------------ rows
    _ROW_SQL = ("SELECT r.study_key, s.accession_number, s.exam_date, s.exam_description, s.modality, s.body_part, "
                "r.score, r.status, r.run_id, r.n_flags, r.flag_types, r.top_confidence, r.sort_key "
                "FROM results r CROSS JOIN studies s ON s.key = r.study_key ")

    def _rows(self, where: list[str], params: list[Any], order: str, limit: int) -> list[WorklistRow]:
        sql = self._ROW_SQL + "WHERE " + " AND ".join(where) + f" ORDER BY r.sort_key {order} LIMIT ?"
        cur = self.conn.execute(sql, [*params, limit])
        raw = cur.fetchall()
        return self._with_reviews(raw)

    def _with_reviews(self, raw: Sequence[tuple]) -> list[WorklistRow]:
        keys = [r[0] for r in raw]
        reviews: dict[str, tuple[int, int, int]] = {}
        if keys:
            marks = ", ".join("?" * len(keys))
            for k, n, decided, verdict in self.conn.execute(
                    "SELECT v.study_key, COUNT(*), COUNT(DISTINCT CASE WHEN f.config_key = ? THEN v.flag_id END), "
                    f"MAX(v.flag_id IS NULL) FROM reviews v LEFT JOIN flags f ON f.id = v.flag_id "
                    f"WHERE v.study_key IN ({marks}) GROUP BY v.study_key", [self.config_key, *keys]):
                reviews[k] = (int(n), int(decided), int(verdict or 0))
        out = []
        for (key, acc, date, desc, mod, part, score, status, run_id, n_flags, types, top, skey) in raw:
            n_rev, decided, verdict = reviews.get(key, (0, 0, 0))
            n_flags = int(n_flags or 0)
            out.append(WorklistRow(key, acc, date, desc, mod, part, score, status, int(run_id), n_flags,
                                   tuple(t for t in (types or "").split(",") if t), top, n_rev, decided, bool(verdict),
                                   state_of(status, n_flags, decided, bool(verdict)), skey))
        return out

    def page(self, flt: WorklistFilter = WorklistFilter(), after: str | None = None, before: str | None = None,
             limit: int = PAGE_SIZE) -> Page:
        """``limit`` rows after the sort key ``after`` (the next page), before ``before`` (the previous
        page), or from the top."""
        if flt.states and set(flt.states) <= {"reviewed", "partly reviewed"}:
            return self._reviewed_page(flt, after, before, limit)
        where, params = self._where(flt)
        if before is not None:
            rows = self._rows([*where, "r.sort_key < ?"], [*params, before], "DESC", limit + 1)
            more = len(rows) > limit
            rows = rows[:limit][::-1]
            return Page(tuple(rows), has_prev=more, has_next=True)
        if after is not None:
            where, params = [*where, "r.sort_key > ?"], [*params, after]
        rows = self._rows(where, params, "ASC", limit + 1)
        return Page(tuple(rows[:limit]), has_prev=after is not None, has_next=len(rows) > limit)

    def _reviewed_page(self, flt: WorklistFilter, after: str | None, before: str | None, limit: int,
                       last: bool = False) -> Page:
        """A page of reviewed / partly reviewed studies from the review-state map (a few thousand sort keys
        in memory), not by walking the million rows of the worklist index."""
        keys = sorted(sk for _, st, sk in self.review_states(flt).values() if st in flt.states)
        if last:
            sel, has_prev, has_next = keys[-limit:], len(keys) > limit, False
        elif before is not None:
            i = bisect.bisect_left(keys, before)
            sel, has_prev, has_next = keys[max(0, i - limit):i], i > limit, True
        else:
            i = bisect.bisect_right(keys, after) if after is not None else 0
            sel, has_prev, has_next = keys[i:i + limit], after is not None, i + limit < len(keys)
        if not sel:
            return Page((), has_prev, False)
        rows = self._rows(["r.config_key = ?", "r.sort_key IN (" + ", ".join("?" * len(sel)) + ")"],
                          [self.config_key, *sel], "ASC", len(sel))
        return Page(tuple(rows), has_prev, has_next)

    def last_page(self, flt: WorklistFilter = WorklistFilter(), limit: int = PAGE_SIZE) -> Page:
        if flt.states and set(flt.states) <= {"reviewed", "partly reviewed"}:
            return self._reviewed_page(flt, None, None, limit, last=True)
        where, params = self._where(flt)
        rows = self._rows(where, params, "DESC", limit + 1)
        more = len(rows) > limit
        return Page(tuple(rows[:limit][::-1]), has_prev=more, has_next=False)

    def row(self, study_key: str) -> WorklistRow | None:
        rows = self._rows(["r.config_key = ?", "r.study_key = ?"], [self.config_key, study_key], "ASC", 1)
        return rows[0] if rows else None

    def all_rows(self, flt: WorklistFilter = WorklistFilter()) -> list[WorklistRow]:
        """Every row (for small stores, exports and tests; the app pages)."""
        out: list[WorklistRow] = []
        after = None
        while True:
            page = self.page(flt, after=after, limit=1000)
            out.extend(page.rows)
            if not page.has_next:
                return out
            after = page.last_key

    # ------------------------------------------------------------------ navigation
    def neighbour(self, study_key: str, flt: WorklistFilter = WorklistFilter(), step: int = 1,
                  unreviewed_flag: bool = False, wrap: bool = False) -> str | None:
        """The study after (``step`` 1) or before (-1) ``study_key`` in worklist order under ``flt``;
        with ``unreviewed_flag`` the next one with a flag nobody decided (``wrap``: then from the top)."""
        row = self.conn.execute("SELECT sort_key FROM results WHERE study_key=? AND config_key=?",
                                (study_key, self.config_key)).fetchone()
        if row is None:
            return None
        where, params = self._where(flt)
        if unreviewed_flag:
            where = [*where, f"r.sort_key < '{_FLAGGED_BELOW}'",
                     "EXISTS (SELECT 1 FROM flags f WHERE f.study_key = r.study_key AND f.config_key = r.config_key "
                     "AND NOT EXISTS (SELECT 1 FROM reviews v WHERE v.flag_id = f.id))"]
        op, order = (">", "ASC") if step > 0 else ("<", "DESC")
        sql = "SELECT r.study_key " + self._from(flt) + " WHERE " + " AND ".join([*where, f"r.sort_key {op} ?"]) + \
            f" ORDER BY r.sort_key {order} LIMIT 1"
        hit = self.conn.execute(sql, [*params, row[0]]).fetchone()
        if hit is None and wrap:
            sql = "SELECT r.study_key " + self._from(flt) + " WHERE " + " AND ".join(where) + \
                f" ORDER BY r.sort_key {order} LIMIT 1"
            hit = self.conn.execute(sql, params).fetchone()
            if hit is not None and hit[0] == study_key:
                hit = None
        return hit[0] if hit else None

    def position(self, study_key: str, flt: WorklistFilter = WorklistFilter()) -> int | None:
        """One-based position of ``study_key`` in the filtered worklist (None when the filter drops it)."""
        row = self.conn.execute("SELECT sort_key FROM results WHERE study_key=? AND config_key=?",
                                (study_key, self.config_key)).fetchone()
        if row is None:
            return None
        where, params = self._where(flt)
        hit = self.conn.execute("SELECT 1 " + self._from(flt) + " WHERE " + " AND ".join([*where, "r.study_key = ?"]),
                                [*params, study_key]).fetchone()
        if hit is None:
            return None
        where, params = self._where(flt, current=False)
        return self._count([*where, "r.sort_key < ?"], [*params, row[0]]) + 1

    # ------------------------------------------------------------------ counts
    def counts(self, flt: WorklistFilter = WorklistFilter()) -> Counts:
        """How many studies the configuration has, how many the filter keeps, and per state."""
        base_flt = WorklistFilter(flt.types, flt.min_confidence, flt.modalities, (), flt.run_id)
        rv = self.results_version()
        total = MEMO.get((self._ident, "total", self.config_key, rv), lambda: self._total())
        base = MEMO.get((self._ident, "base", self.config_key, base_flt, rv), lambda: self._base_counts(base_flt))
        reviewed: dict[tuple[str, str], int] = {}
        for kind, state, _ in self.review_states(base_flt).values():
            reviewed[(kind, state)] = reviewed.get((kind, state), 0) + 1
        by_state = {
            "flagged, not reviewed": base["flagged"] - reviewed.get(("flagged", "reviewed"), 0)
            - reviewed.get(("flagged", "partly reviewed"), 0),
            "partly reviewed": sum(n for (_, s), n in reviewed.items() if s == "partly reviewed"),
            "reviewed": sum(n for (_, s), n in reviewed.items() if s == "reviewed"),
            "no flags": base["no flags"] - reviewed.get(("no flags", "reviewed"), 0),
            "check failed": base["failed"],
        }
        wanted = flt.states or STATES
        return Counts(total, sum(by_state[s] for s in wanted), by_state)

    def _total(self) -> int:
        return self._count(["r.config_key = ?"], [self.config_key])

    def _base_counts(self, flt: WorklistFilter) -> dict[str, int]:
        """Flagged / no flags / failed under the review-independent part of a filter: three ranges of the
        worklist index, or with a type, modality or run criterion one pass over the configuration's entries
        of that (covering) index."""
        where, params = self._where(flt, with_states=False, current=False)
        ranges = {"flagged": ("", _FLAGGED_BELOW), "no flags": (_FLAGGED_BELOW, _FAILED_FROM), "failed": (_FAILED_FROM, "~")}
        if not (flt.types or flt.modalities or flt.run_id is not None):
            return {name: self._count([*where, "r.sort_key >= ?", "r.sort_key < ?"], [*params, lo, hi])
                    for name, (lo, hi) in ranges.items()}
        kind = (f"CASE WHEN r.sort_key < '{_FLAGGED_BELOW}' THEN 'flagged' "
                f"WHEN r.sort_key < '{_FAILED_FROM}' THEN 'no flags' ELSE 'failed' END")
        out = dict.fromkeys(ranges, 0)
        for name, n in self.conn.execute(f"SELECT {kind}, COUNT(*) FROM results r WHERE " + " AND ".join(where) +
                                         " GROUP BY 1", params):
            out[name] += int(n)
        if self._versions:
            for name, n in self.conn.execute(
                    f"SELECT {kind}, COUNT(*) FROM (SELECT DISTINCT supersedes AS k FROM report_versions WHERE "
                    "supersedes IS NOT NULL) rv CROSS JOIN results r ON r.study_key = rv.k WHERE " +
                    " AND ".join(where) + " GROUP BY 1", params):
                out[name] -= int(n)
        return out

    def review_states(self, flt: WorklistFilter = WorklistFilter()) -> dict[str, tuple[str, str, str]]:
        """``study_key -> (kind, state, sort_key)`` of every study with a review, under the review-independent
        part of ``flt``. Computed once per results version, then kept current from the reviews added since
        (reviews are append-only: a saved decision re-reads one study, not the ten thousand reviewed ones)."""
        flt = WorklistFilter(flt.types, flt.min_confidence, flt.modalities, (), flt.run_id)
        key = (self._ident, "review_states", self.config_key, flt, self.results_version())
        now = self.reviews_version()
        cached = MEMO.peek(key)
        if cached is not None and cached[0] == now:
            return cached[1]
        if cached is None:
            states = self._states_of(flt, None)
        else:
            changed = [k for (k,) in self.conn.execute(
                "SELECT DISTINCT study_key FROM reviews WHERE id > ? AND study_key IS NOT NULL", (cached[0],))]
            states = dict(cached[1])
            for k in changed:
                states.pop(k, None)
            states.update(self._states_of(flt, changed))
        MEMO.put(key, (now, states))
        return states

    def _states_of(self, flt: WorklistFilter, keys: list[str] | None) -> dict[str, tuple[str, str, str]]:
        """(kind, state, sort_key) of the reviewed studies ``keys`` (None: all of them) under a filter, driven
        from the reviewed studies (CROSS JOIN keeps that order)."""
        where, params = self._where(flt, with_states=False)
        kind = (f"CASE WHEN r.sort_key < '{_FLAGGED_BELOW}' THEN 'flagged' "
                f"WHEN r.sort_key < '{_FAILED_FROM}' THEN 'no flags' ELSE 'failed' END")
        if keys is None:
            source, args = "(SELECT DISTINCT study_key FROM reviews WHERE study_key IS NOT NULL)", []
        elif not keys:
            return {}
        else:
            source, args = "(SELECT value AS study_key FROM json_each(?))", [json.dumps(keys)]
        sql = (f"SELECT r.study_key, {kind}, {_STATE_SQL}, r.sort_key FROM {source} rs CROSS JOIN results r "
               "ON r.study_key = rs.study_key WHERE " + " AND ".join(where))
        return {k: (kd, st, sk) for k, kd, st, sk in self.conn.execute(sql, [*args, *params])}

    # ------------------------------------------------------------------ filter choices
    def modalities(self) -> list[str]:
        """Modalities of the configuration's studies (listed by the writer: no scan)."""
        return [m for (m,) in self.conn.execute("SELECT modality FROM worklist_modalities WHERE config_key = ? "
                                                 "ORDER BY modality", (self.config_key,))]

    def run_ids(self) -> list[int]:
        """Runs of the configuration (from the small runs table, newest first)."""
        return [int(r) for (r,) in self.conn.execute("SELECT id FROM runs WHERE config_key = ? ORDER BY id DESC",
                                                     (self.config_key,))]
