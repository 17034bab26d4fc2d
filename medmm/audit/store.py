"""The review store: one SQLite file holding studies, reports, runs, flags, failures and reviews.

It is the only way the CLI, the audit runner and the app read or write results. SQLite in WAL
mode with foreign keys; every write is a transaction (``BEGIN IMMEDIATE``, so concurrent
writers queue instead of failing, with a busy timeout). The schema carries a version and
migrations run on open. Patient identifiers never enter the store: a study is keyed by a key
the store issues, and the source identifier is kept only as a salted hash (the salt is
per-store, random). Reviews are append-only: a changed mind is a new row; the current
decision is the latest row.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from medmm import __version__
from medmm.errors import InputError, MedmmError

SCHEMA_VERSION = 2
DECISIONS = ("true_error", "false_positive", "uncertain")
HEADER_COLUMNS = ("modality", "body_part", "laterality", "view_position", "sex")

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE studies (
        key TEXT PRIMARY KEY,
        source_hash TEXT NOT NULL UNIQUE,
        source_path TEXT,
        modality TEXT, body_part TEXT, laterality TEXT, view_position TEXT, sex TEXT,
        created_at REAL NOT NULL
    );
    CREATE TABLE reports (
        study_key TEXT PRIMARY KEY REFERENCES studies(key) ON DELETE CASCADE,
        text TEXT NOT NULL,
        sha256 TEXT NOT NULL
    );
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        config_key TEXT NOT NULL,
        checker TEXT NOT NULL,
        model_fingerprint TEXT,
        config TEXT NOT NULL,
        medmm_version TEXT NOT NULL,
        started_at REAL NOT NULL,
        finished_at REAL
    );
    CREATE TABLE results (
        study_key TEXT NOT NULL REFERENCES studies(key) ON DELETE CASCADE,
        config_key TEXT NOT NULL,
        run_id INTEGER NOT NULL REFERENCES runs(id),
        status TEXT NOT NULL CHECK (status IN ('done', 'failed')),
        has_error INTEGER,
        score REAL,
        finished_at REAL NOT NULL,
        PRIMARY KEY (study_key, config_key)
    );
    CREATE TABLE flags (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id INTEGER NOT NULL REFERENCES runs(id),
        study_key TEXT NOT NULL REFERENCES studies(key) ON DELETE CASCADE,
        config_key TEXT NOT NULL,
        type TEXT NOT NULL,
        start INTEGER NOT NULL,
        "end" INTEGER NOT NULL,
        text TEXT NOT NULL,
        explanation TEXT NOT NULL,
        confidence REAL NOT NULL,
        evidence TEXT NOT NULL
    );
    CREATE INDEX flags_study ON flags(study_key);
    CREATE TABLE failures (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id INTEGER NOT NULL REFERENCES runs(id),
        study_key TEXT REFERENCES studies(key) ON DELETE CASCADE,
        source_hash TEXT,
        stage TEXT NOT NULL,
        reason TEXT NOT NULL,
        at REAL NOT NULL
    );
    CREATE TABLE reviews (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        flag_id INTEGER REFERENCES flags(id),
        study_key TEXT REFERENCES studies(key),
        reviewer TEXT NOT NULL,
        decision TEXT NOT NULL CHECK (decision IN ('true_error', 'false_positive', 'uncertain')),
        comment TEXT,
        at REAL NOT NULL,
        CHECK (flag_id IS NOT NULL OR study_key IS NOT NULL)
    );
    CREATE INDEX reviews_flag ON reviews(flag_id);
    CREATE TRIGGER reviews_append_only_update BEFORE UPDATE ON reviews
        BEGIN SELECT RAISE(ABORT, 'reviews are append-only: add a new review instead'); END;
    CREATE TRIGGER reviews_append_only_delete BEFORE DELETE ON reviews
        BEGIN SELECT RAISE(ABORT, 'reviews are append-only: add a new review instead'); END;
    """,
    # v2: what the review app shows beside the report: image paths and known regions (boxes)
    2: """
    ALTER TABLE studies ADD COLUMN images TEXT;
    ALTER TABLE studies ADD COLUMN regions TEXT;
    CREATE TABLE study_verdicts_placeholder (id INTEGER PRIMARY KEY);
    DROP TABLE study_verdicts_placeholder;
    """,
}


class StoreError(MedmmError):
    """The review store cannot be opened or written (corrupt file, newer schema, bad value)."""


@dataclass(frozen=True)
class StudyRecord:
    source_id: str  # the identifier as found (never stored raw)
    source_path: str | None
    header: dict[str, Any] | None
    report: str | None
    images: tuple[str, ...] = ()
    regions: tuple[dict[str, Any], ...] = ()  # boxes: {"image", "slice", "x1", "y1", "x2", "y2", "label"}


class Store:
    """A handle on one store file. Not shared between processes: each process opens its own."""

    def __init__(self, path: str, timeout: float = 60.0) -> None:
        self.path = path
        if os.path.isdir(path):
            raise InputError(f"{path}: is a folder; give a file path for the store (e.g. audit.sqlite)")
        try:
            self.conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path}: not a medmm store or corrupt ({exc})") from exc
        self.salt = bytes.fromhex(self._meta("salt"))

    # ------------------------------------------------------------------ schema
    def _migrate(self) -> None:
        with self.transaction() as c:
            have = c.execute("SELECT name FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
            version = 0
            if have:
                row = c.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise StoreError(f"{self.path}: schema version {version} is newer than this medmm ({SCHEMA_VERSION}); "
                                 "upgrade medmm")
            for v in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _split_sql(_MIGRATIONS[v]):
                    c.execute(statement)
                c.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)", (str(v),))
            if not c.execute("SELECT 1 FROM meta WHERE key='salt'").fetchone():
                c.execute("INSERT INTO meta(key, value) VALUES ('salt', ?)", (secrets.token_hex(16),))

    def _meta(self, key: str) -> str:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        if row is None:
            raise StoreError(f"{self.path}: meta key {key!r} missing")
        return row[0]

    @property
    def schema_version(self) -> int:
        return int(self._meta("schema_version"))

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back on any exception)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ identity
    def source_hash(self, source_id: str) -> str:
        return hmac.new(self.salt, source_id.encode("utf-8"), hashlib.sha256).hexdigest()

    def study_key(self, source_id: str) -> str:
        """The key the store issues for a source identifier (stable within this store)."""
        return "S" + self.source_hash(source_id)[:16]

    # ------------------------------------------------------------------ runs
    def start_run(self, checker: str, config: dict[str, Any], model_fingerprint: str | None) -> tuple[int, str]:
        config_key = hashlib.sha256(json.dumps({"checker": checker, "model": model_fingerprint, "config": config},
                                               sort_keys=True).encode()).hexdigest()[:24]
        with self.transaction() as c:
            cur = c.execute("INSERT INTO runs(config_key, checker, model_fingerprint, config, medmm_version, started_at) "
                            "VALUES (?, ?, ?, ?, ?, ?)", (config_key, checker, model_fingerprint,
                                                          json.dumps(config, sort_keys=True), __version__, time.time()))
            return int(cur.lastrowid), config_key

    def finish_run(self, run_id: int) -> None:
        with self.transaction() as c:
            c.execute("UPDATE runs SET finished_at=? WHERE id=?", (time.time(), run_id))

    def finished_sources(self, config_key: str) -> set[str]:
        """Source hashes already done (or failed) under this configuration."""
        rows = self.conn.execute("SELECT s.source_hash FROM results r JOIN studies s ON s.key = r.study_key "
                                 "WHERE r.config_key=?", (config_key,)).fetchall()
        return {r[0] for r in rows}

    # ------------------------------------------------------------------ writing results
    def _upsert_study(self, c: sqlite3.Connection, rec: StudyRecord) -> str:
        key = self.study_key(rec.source_id)
        header = rec.header or {}
        c.execute("INSERT OR IGNORE INTO studies(key, source_hash, source_path, " + ", ".join(HEADER_COLUMNS) +
                  ", created_at, images, regions) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                  (key, self.source_hash(rec.source_id), rec.source_path,
                   *[(str(header.get(k)) if header.get(k) not in (None, "") else None) for k in HEADER_COLUMNS],
                   time.time(), json.dumps(list(rec.images)), json.dumps(list(rec.regions))))
        if rec.report is not None:
            c.execute("INSERT OR REPLACE INTO reports(study_key, text, sha256) VALUES (?, ?, ?)",
                      (key, rec.report, hashlib.sha256(rec.report.encode("utf-8", "replace")).hexdigest()))
        return key

    def record_result(self, run_id: int, config_key: str, rec: StudyRecord, result: Any) -> bool:
        """Store a study's check result and flags atomically. Returns False if another writer
        already finished this study under the same configuration (nothing is duplicated)."""
        with self.transaction() as c:
            key = self._upsert_study(c, rec)
            cur = c.execute("INSERT OR IGNORE INTO results(study_key, config_key, run_id, status, has_error, score, "
                            "finished_at) VALUES (?, ?, ?, 'done', ?, ?, ?)",
                            (key, config_key, run_id, int(result.has_error), float(result.score), time.time()))
            if cur.rowcount == 0:
                return False
            c.executemany('INSERT INTO flags(run_id, study_key, config_key, type, start, "end", text, explanation, '
                          "confidence, evidence) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          [(run_id, key, config_key, f.type, f.start, f.end, f.text, f.explanation, f.confidence,
                            f.evidence) for f in result.flags])
            return True

    def record_failure(self, run_id: int, config_key: str, rec: StudyRecord, stage: str, reason: str) -> bool:
        with self.transaction() as c:
            key = self._upsert_study(c, rec)
            cur = c.execute("INSERT OR IGNORE INTO results(study_key, config_key, run_id, status, finished_at) "
                            "VALUES (?, ?, ?, 'failed', ?)", (key, config_key, run_id, time.time()))
            if cur.rowcount == 0:
                return False
            c.execute("INSERT INTO failures(run_id, study_key, source_hash, stage, reason, at) VALUES (?, ?, ?, ?, ?, ?)",
                      (run_id, key, self.source_hash(rec.source_id), stage, reason, time.time()))
            return True

    # ------------------------------------------------------------------ reviews
    def add_review(self, reviewer: str, decision: str, flag_id: int | None = None, study_key: str | None = None,
                   comment: str | None = None) -> int:
        if decision not in DECISIONS:
            raise StoreError(f"decision {decision!r}: use one of {', '.join(DECISIONS)}")
        if flag_id is None and study_key is None:
            raise StoreError("a review needs a flag id or a study key")
        if not reviewer.strip():
            raise StoreError("a review needs a reviewer name")
        with self.transaction() as c:
            if flag_id is not None and study_key is None:
                row = c.execute("SELECT study_key FROM flags WHERE id=?", (flag_id,)).fetchone()
                if row is None:
                    raise StoreError(f"no flag with id {flag_id}")
                study_key = row[0]
            cur = c.execute("INSERT INTO reviews(flag_id, study_key, reviewer, decision, comment, at) "
                            "VALUES (?, ?, ?, ?, ?, ?)", (flag_id, study_key, reviewer, decision, comment, time.time()))
            return int(cur.lastrowid)

    def latest_decision(self, flag_id: int) -> str | None:
        row = self.conn.execute("SELECT decision FROM reviews WHERE flag_id=? ORDER BY id DESC LIMIT 1",
                                (flag_id,)).fetchone()
        return row[0] if row else None

    # ------------------------------------------------------------------ reading
    def counts(self) -> dict[str, int]:
        out = {}
        for table in ("studies", "reports", "runs", "results", "flags", "failures", "reviews"):
            out[table] = int(self.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608 - fixed names
        return out

    def worklist(self) -> list[dict[str, Any]]:
        """Studies with their latest result, flag counts and review status, riskiest first."""
        sql = """
        SELECT s.key, s.modality, s.body_part, s.sex, r.score, r.has_error, r.status, r.run_id,
               (SELECT COUNT(*) FROM flags f WHERE f.study_key = s.key AND f.run_id = r.run_id) AS n_flags,
               (SELECT GROUP_CONCAT(DISTINCT f.type) FROM flags f WHERE f.study_key = s.key AND f.run_id = r.run_id),
               (SELECT MAX(f.confidence) FROM flags f WHERE f.study_key = s.key AND f.run_id = r.run_id),
               (SELECT COUNT(*) FROM reviews v WHERE v.study_key = s.key) AS n_reviews
        FROM studies s JOIN results r ON r.study_key = s.key
        WHERE r.finished_at = (SELECT MAX(r2.finished_at) FROM results r2 WHERE r2.study_key = s.key)
        ORDER BY COALESCE(r.score, -1) DESC, s.key
        """
        cols = ["study_key", "modality", "body_part", "sex", "score", "has_error", "status", "run_id", "n_flags",
                "flag_types", "max_confidence", "n_reviews"]
        out = []
        for row in self.conn.execute(sql).fetchall():
            d = dict(zip(cols, row))
            d["flag_types"] = sorted(set((d["flag_types"] or "").split(",")) - {""})
            d["state"] = "reviewed" if d["n_reviews"] else ("flagged" if d["n_flags"] else "unreviewed")
            out.append(d)
        return out

    def study(self, key: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT s.key, s.source_path, s.modality, s.body_part, s.laterality, s.view_position, "
                                "s.sex, s.images, s.regions, r.text FROM studies s LEFT JOIN reports r "
                                "ON r.study_key = s.key WHERE s.key=?", (key,)).fetchone()
        if row is None:
            return None
        cols = ["study_key", "source_path", "modality", "body_part", "laterality", "view_position", "sex", "images",
                "regions", "report"]
        d = dict(zip(cols, row))
        d["images"] = json.loads(d["images"] or "[]")
        d["regions"] = json.loads(d["regions"] or "[]")
        run = self.conn.execute("SELECT run_id FROM results WHERE study_key=? ORDER BY finished_at DESC LIMIT 1",
                                (key,)).fetchone()
        d["run_id"] = run[0] if run else None
        flags = self.conn.execute('SELECT id, type, start, "end", text, explanation, confidence, evidence FROM flags '
                                  "WHERE study_key=? AND run_id=? ORDER BY start", (key, d["run_id"])).fetchall()
        d["flags"] = [dict(zip(["id", "type", "start", "end", "text", "explanation", "confidence", "evidence"], f)) |
                      {"decision": self.latest_decision(f[0])} for f in flags]
        verdict = self.conn.execute("SELECT decision, reviewer, at FROM reviews WHERE study_key=? AND flag_id IS NULL "
                                    "ORDER BY id DESC LIMIT 1", (key,)).fetchone()
        d["verdict"] = verdict[0] if verdict else None
        return d

    def history(self, key: str) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT v.id, v.flag_id, f.type, v.reviewer, v.decision, v.comment, v.at FROM reviews v "
                                 "LEFT JOIN flags f ON f.id = v.flag_id WHERE v.study_key=? ORDER BY v.id", (key,))
        return [dict(zip(["review_id", "flag_id", "flag_type", "reviewer", "decision", "comment", "at"], r))
                for r in rows.fetchall()]

    def flag_rows(self, reviewed_only: bool = False) -> list[dict[str, Any]]:
        """One row per flag with its study, and the latest review decision (or None)."""
        sql = ('SELECT f.id, f.study_key, s.source_path, s.modality, f.type, f.start, f."end", f.text, f.explanation, '
               "f.confidence, f.evidence, f.run_id, "
               "(SELECT r.decision FROM reviews r WHERE r.flag_id = f.id ORDER BY r.id DESC LIMIT 1), "
               "(SELECT r.reviewer FROM reviews r WHERE r.flag_id = f.id ORDER BY r.id DESC LIMIT 1) "
               "FROM flags f JOIN studies s ON s.key = f.study_key ORDER BY f.study_key, f.start, f.id")
        cols = ["flag_id", "study_key", "source_path", "modality", "type", "start", "end", "text", "explanation",
                "confidence", "evidence", "run_id", "decision", "reviewer"]
        rows = [dict(zip(cols, r)) for r in self.conn.execute(sql).fetchall()]
        return [r for r in rows if r["decision"] is not None] if reviewed_only else rows


def _split_sql(script: str) -> list[str]:
    """Statements of a migration script (triggers keep their inner semicolons)."""
    out, buf, depth = [], [], 0
    for line in script.strip().splitlines():
        if not line.strip():
            continue
        buf.append(line)
        upper = line.upper()
        depth += upper.count("BEGIN ") - upper.count("END;")
        if line.rstrip().endswith(";") and depth <= 0:
            out.append("\n".join(buf))
            buf, depth = [], 0
    if buf:
        out.append("\n".join(buf))
    return out
