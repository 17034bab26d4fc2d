"""One hash chain over everything the review store records (schema v6; studies and reports from v8).

Every row written to ``runs``, ``results``, ``flags``, ``failures``, ``reviews`` and ``access_log``
(and every run's finish time) gets an entry in the ``chain`` table, written **by SQLite triggers in
the same statement**: ``seq``, the row's kind and reference, a SHA-256 digest of the row's content,
the previous entry's hash and ``row_hash`` = SHA-256(prev_hash, kind, ref, digest). The triggers
call two SQL functions (``medmm_digest``, ``medmm_link``) that :func:`register` installs on every
connection medmm opens; a plain ``sqlite3`` client cannot write those tables at all (no such
function) unless it drops the triggers, and then :func:`verify` names the rows that were added,
changed or removed without a chain entry. The chain itself is append-only (triggers refuse UPDATE,
DELETE and REPLACE, and an entry whose ``prev_hash``/``row_hash`` do not follow).

Whoever can write the file can still drop every trigger and recompute the whole chain: record the
head that ``medmm store verify`` prints somewhere else (with each backup) and compare.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from medmm.imaging.volume import REPORT_FACTS

GENESIS = "0" * 64

# kind -> (table, reference expression (SQL over the table's columns / NEW.), hashed columns)
KINDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "run": ("runs", "id", ("id", "config_key", "checker", "model_fingerprint", "config", "medmm_version",
                           "started_at")),
    "run_finish": ("runs", "id", ("id", "finished_at")),
    "result": ("results", "study_key || '|' || config_key",
               ("study_key", "config_key", "run_id", "status", "has_error", "score", "finished_at", "notes")),
    # v9 adds a flag's provenance (model, region, related spans) at the end: see FLAG_V9_COLUMNS
    "flag": ("flags", "id", ("id", "run_id", "study_key", "config_key", "type", "start", "end", "text",
                             "explanation", "confidence", "evidence", "rule", "model", "region", "related")),
    "failure": ("failures", "id", ("id", "run_id", "study_key", "source_hash", "stage", "reason", "at")),
    "review": ("reviews", "id", ("id", "flag_id", "study_key", "reviewer", "decision", "comment", "at")),
    "access": ("access_log", "id", ("id", "at", "user", "event", "study_key", "client", "detail")),
    # v8: what a study is (its images and folder, its header facts, how the hospital names it) and the report
    # text flags point into; both are append-only tables, so one entry per row
    "study": ("studies", "key", ("key", "source_hash", "source_path", *REPORT_FACTS, "created_at", "images",
                                 "regions", "source", "accession_number", "study_instance_uid", "exam_date",
                                 "exam_time", "exam_description")),
    "report": ("reports", "study_key", ("study_key", "text", "sha256")),
}
# The kinds chained from v6 (backfilled then) and those added by v8 (backfilled by :func:`backfill_v8`).
V6_KINDS = ("run", "run_finish", "result", "flag", "failure", "review", "access")
V8_KINDS = ("study", "report")
# v9 (issue 18 item 6, issue 21 item 3): a flag's provenance, chained for every flag written from v9. A flag whose
# three are NULL (every flag stored before v9, and a rule flag without related spans) keeps the digest it had at
# v6/v8 (:func:`digest` leaves an all-NULL tail out), so a migrated store verifies without re-chaining anything,
# while setting any of them on an old row outside medmm changes its digest and is named by :func:`verify`.
FLAG_V9_COLUMNS = ("model", "region", "related")
_OPTIONAL_TAIL: dict[str, tuple[int, int]] = {"flag": (len(KINDS["flag"][2]), len(FLAG_V9_COLUMNS))}

SCHEMA = """
CREATE TABLE chain (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    ref TEXT NOT NULL,
    digest TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    row_hash TEXT NOT NULL
);
CREATE INDEX chain_kind_ref ON chain(kind, ref);
"""


def digest(kind: str, *values: Any) -> str:
    """SHA-256 over a row's kind and values (canonical JSON; the same in SQL and in Python)."""
    full, tail = _OPTIONAL_TAIL.get(kind, (0, 0))
    if tail and len(values) == full and all(v is None for v in values[-tail:]):
        values = values[:-tail]  # a row without the columns a later schema added (see FLAG_V9_COLUMNS)
    payload = _CANONICAL([kind, *values])
    return hashlib.sha256(payload.encode("ascii")).hexdigest()


# json.dumps(v, separators=(",", ":"), ensure_ascii=True) with its encoder built once: the same text, without
# building an encoder for each of the several digests the triggers compute per study an audit writes
_CANONICAL = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode


def link(prev_hash: str, kind: str, ref: Any, digest_: str) -> str:
    return hashlib.sha256(f"{prev_hash}|{kind}|{ref}|{digest_}".encode("ascii", "replace")).hexdigest()


def register(conn: sqlite3.Connection) -> None:
    """Install the SQL functions the chain triggers call (every connection that writes the store)."""
    conn.create_function("medmm_digest", -1, digest, deterministic=True)
    conn.create_function("medmm_link", 4, link, deterministic=True)


def _q(col: str, prefix: str = "") -> str:
    return f'{prefix}"{col}"'


def _ref_sql(kind: str, prefix: str) -> str:
    table, ref, _ = KINDS[kind]
    if kind == "result":
        return f"{prefix}study_key || '|' || {prefix}config_key"
    return f"{prefix}{ref}"


def _entry_trigger(name: str, kind: str, when: str, cols: tuple[str, ...] | None = None) -> str:
    table, _, all_cols = KINDS[kind]
    cols = cols or all_cols
    values = ", ".join(_q(c, "NEW.") for c in cols)
    ref = _ref_sql(kind, "NEW.")
    return (f"CREATE TRIGGER {name} {when} ON {table} BEGIN "
            f"INSERT INTO chain(kind, ref, digest, prev_hash, row_hash) "
            f"SELECT '{kind}', x.ref, x.d, x.p, medmm_link(x.p, '{kind}', x.ref, x.d) FROM (SELECT {ref} AS ref, "
            f"medmm_digest('{kind}', {values}) AS d, "
            f"COALESCE((SELECT row_hash FROM chain ORDER BY seq DESC LIMIT 1), '{GENESIS}') AS p) AS x; END")


TRIGGERS: dict[str, str] = {
    "chain_append_only_update":
        "CREATE TRIGGER chain_append_only_update BEFORE UPDATE ON chain "
        "BEGIN SELECT RAISE(ABORT, 'the store chain is append-only'); END",
    "chain_append_only_delete":
        "CREATE TRIGGER chain_append_only_delete BEFORE DELETE ON chain "
        "BEGIN SELECT RAISE(ABORT, 'the store chain is append-only'); END",
    "chain_links":
        "CREATE TRIGGER chain_links BEFORE INSERT ON chain "
        "WHEN EXISTS (SELECT 1 FROM chain WHERE seq = NEW.seq) "
        f"OR NEW.prev_hash IS NOT COALESCE((SELECT row_hash FROM chain ORDER BY seq DESC LIMIT 1), '{GENESIS}') "
        "OR NEW.row_hash IS NOT medmm_link(NEW.prev_hash, NEW.kind, NEW.ref, NEW.digest) "
        "BEGIN SELECT RAISE(ABORT, 'the store chain is append-only and hash-linked: write through medmm'); END",
    "chain_runs": _entry_trigger("chain_runs", "run", "AFTER INSERT"),
    "chain_runs_finish": _entry_trigger("chain_runs_finish", "run_finish", "AFTER UPDATE OF finished_at"),
    "chain_results": _entry_trigger("chain_results", "result", "AFTER INSERT"),
    # as created at v6 (before the v9 columns); V9_TRIGGERS replaces it at v9
    "chain_flags": _entry_trigger("chain_flags", "flag", "AFTER INSERT", KINDS["flag"][2][:-len(FLAG_V9_COLUMNS)]),
    "chain_failures": _entry_trigger("chain_failures", "failure", "AFTER INSERT"),
    "chain_reviews": _entry_trigger("chain_reviews", "review", "AFTER INSERT"),
    "chain_access": _entry_trigger("chain_access", "access", "AFTER INSERT"),
}
# v8: studies and reports (created by the v8 migration, after :func:`backfill_v8`)
V8_TRIGGERS: dict[str, str] = {
    "chain_studies": _entry_trigger("chain_studies", "study", "AFTER INSERT"),
    "chain_reports": _entry_trigger("chain_reports", "report", "AFTER INSERT"),
}
# v9: flags chained with their provenance columns (re-created by the v9 migration: :func:`upgrade_v9`)
V9_TRIGGERS: dict[str, str] = {
    "chain_flags": _entry_trigger("chain_flags", "flag", "AFTER INSERT"),
}


def upgrade_v9(conn: sqlite3.Connection) -> None:
    """The v9 step: the flag chain trigger re-created over the provenance columns (entries already chained keep
    their digests: see :data:`FLAG_V9_COLUMNS`)."""
    for name, sql in V9_TRIGGERS.items():
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")
        conn.execute(sql)


def _present(conn: sqlite3.Connection, table: str, cols: tuple[str, ...]) -> tuple[str, ...]:
    """``cols`` less the ones ``table`` does not have yet (a backfill during an older step of a migration)."""
    have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}  # noqa: S608 - fixed names
    return tuple(c for c in cols if c in have)


def _rows(conn: sqlite3.Connection, kind: str) -> Iterator[tuple[str, str]]:
    """(ref, digest) of every row of ``kind`` as it is now, in the chain index's order (refs as text)."""
    table, _, cols = KINDS[kind]
    ref = _ref_sql(kind, "")
    where = " WHERE finished_at IS NOT NULL" if kind == "run_finish" else ""
    sql = (f"SELECT CAST({ref} AS TEXT) AS r, {', '.join(_q(c) for c in cols)} FROM {table}{where} "  # noqa: S608
           "ORDER BY r")
    for r in conn.execute(sql):
        yield str(r[0]), digest(kind, *r[1:])


def _chained(conn: sqlite3.Connection, kind: str) -> Iterator[tuple[str, str, int]]:
    """(ref, digest, entries) per chained ref of ``kind`` (the last entry's digest), in ref order."""
    cur = conn.execute("SELECT ref, digest FROM chain WHERE kind = ? ORDER BY ref, seq", (kind,))
    last: list = []
    for ref, dig in cur:
        if last and last[0] == ref:
            last[1], last[2] = dig, last[2] + 1
            continue
        if last:
            yield last[0], last[1], last[2]
        last = [ref, dig, 1]
    if last:
        yield last[0], last[1], last[2]


def backfill_v8(conn: sqlite3.Connection) -> int:
    """Chain the studies and reports a store held before v8 that have no entry yet, after the entries it already
    has; then (re)create their triggers."""
    row = conn.execute("SELECT row_hash FROM chain ORDER BY seq DESC LIMIT 1").fetchone()
    n = backfill(conn, V8_KINDS, row[0] if row else GENESIS, only_unchained=True)
    for name, sql in V8_TRIGGERS.items():
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")
        conn.execute(sql)
    return n


def backfill(conn: sqlite3.Connection, kinds: tuple[str, ...] = V6_KINDS[:-1], prev: str = GENESIS,
             only_unchained: bool = False) -> int:
    """Chain the rows a store held before v6 (runs, results, flags, failures, reviews in id order)."""
    n = 0
    for kind in kinds:
        table, _, cols = KINDS[kind]
        cols = _present(conn, table, cols)
        ref = _ref_sql(kind, "")
        where = " WHERE finished_at IS NOT NULL" if kind == "run_finish" else ""
        if only_unchained:
            where = f" WHERE CAST({ref} AS TEXT) NOT IN (SELECT ref FROM chain WHERE kind = '{kind}')"
        for r in conn.execute(f"SELECT {ref}, {', '.join(_q(c) for c in cols)} FROM {table}{where} "  # noqa: S608
                              "ORDER BY rowid").fetchall():
            d = digest(kind, *r[1:])
            h = link(prev, kind, str(r[0]), d)
            conn.execute("INSERT INTO chain(kind, ref, digest, prev_hash, row_hash) VALUES (?, ?, ?, ?, ?)",
                         (kind, str(r[0]), d, prev, h))
            prev, n = h, n + 1
    return n


@dataclass(frozen=True)
class ChainReport:
    entries: int
    head: str  # row_hash of the last entry: record it elsewhere
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(conn: sqlite3.Connection, max_problems: int = 20) -> ChainReport:
    """Walk the chain (links and hashes), then compare every covered row with its entry (a merge of
    two sorted streams per kind: memory stays flat on a store of millions of rows)."""
    problems: list[str] = []
    prev, n = GENESIS, 0
    for seq, kind, ref, dig, p, h in conn.execute("SELECT seq, kind, ref, digest, prev_hash, row_hash FROM chain "
                                                  "ORDER BY seq"):
        n += 1
        if p != prev:
            problems.append(f"chain entry {seq}: its prev_hash is not the previous entry's hash (an entry was "
                            "removed, inserted or reordered)")
        elif link(p, kind, ref, dig) != h:
            problems.append(f"chain entry {seq}: its content does not match its hash (the entry was rewritten)")
        prev = h
        if len(problems) >= max_problems:
            return ChainReport(n, prev, tuple(problems))
    for kind in KINDS:
        rows, chained = _rows(conn, kind), _chained(conn, kind)
        row, entry = next(rows, None), next(chained, None)
        while (row is not None or entry is not None) and len(problems) < max_problems:
            if entry is None or (row is not None and row[0] < entry[0]):
                problems.append(f"{kind} {row[0]}: in the store without a chain entry (added outside medmm)")
                row = next(rows, None)
            elif row is None or entry[0] < row[0]:
                problems.append(f"{kind} {entry[0]}: chained but no longer in the store (removed outside medmm)")
                entry = next(chained, None)
            else:
                if row[1] != entry[1]:
                    problems.append(f"{kind} {row[0]}: differs from what was chained (changed outside medmm)")
                elif entry[2] > 1 and kind != "run_finish":
                    problems.append(f"{kind} {row[0]}: chained {entry[2]} times (entries added outside medmm)")
                row, entry = next(rows, None), next(chained, None)
    return ChainReport(n, prev, tuple(problems[:max_problems]))
