"""The review store: one SQLite file holding studies, reports, runs, flags, failures and reviews.

It is the only way the CLI, the audit runner and the app read or write results. SQLite in WAL
mode with foreign keys; every write is a transaction (``BEGIN IMMEDIATE``, so concurrent
writers queue instead of failing, with a busy timeout). The schema carries a version and
migrations run on open. Reviews are append-only: a changed mind is a new row; the current
decision is the latest row.

**The store is PHI-bearing by nature.** It holds report text and the locations of the study's
images and folder as given (folders are often named after the patient), because the review app
needs them. The store file (and SQLite's ``-wal``/``-shm`` side files, which SQLite creates with
the main file's mode) is created with mode 0600. Study keys are issued by the store; the source
identifier is kept as an HMAC with a random per-store salt — which whoever holds the file can
brute-force for short identifiers (an MRN), since the salt is in the file. Nothing path-like
leaves the store by default: exports drop paths unless asked (``with_paths``), and the reading
helpers for the app (:meth:`Store.study`) return image *references* by index, not paths.
Results are keyed by the run identity (:class:`medmm.runs.RunConfig`), so a changed checker,
config, threshold or model re-checks a study instead of skipping it.

**Tamper evidence (schema v4).** Studies, reports, results, flags, failures and reviews are
append-only: SQLite triggers refuse ``UPDATE`` and ``DELETE`` and also ``INSERT OR REPLACE`` /
``REPLACE INTO`` (a ``BEFORE INSERT`` trigger raises when a row with the same key exists; a
REPLACE's hidden delete would not fire a DELETE trigger with ``recursive_triggers`` off, which is
also switched on for every connection medmm opens). The triggers are checked on every open: a
missing or altered one is a :class:`StoreError` telling the administrator what to do. Reviews
carry a hash chain (``prev_hash``, ``row_hash`` = SHA-256 over the previous hash and the row),
checked by :meth:`Store.verify` (``medmm store verify --db FILE``), whose chain head an
administrator can record elsewhere: whoever can write the file can drop the triggers and
recompute the chain, but not without the recorded head changing.

**One chain over everything (schema v6, issue 20).** Every run, run finish, result, flag, failure,
review and access-log row also gets an entry in the ``chain`` table, written by triggers in the same
statement (:mod:`medmm.audit.chain`); a trigger medmm did not create refuses the open (one could
swallow writes). The access log (logins, study views, exports: :mod:`medmm.audit.access_log`) and
the app's logins and back-off counters (:mod:`medmm.audit.logins`) live here too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import time
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

from medmm import __version__
from medmm.audit import access_log, chain, logins
from medmm.errors import InputError, MedmmError
from medmm.imaging.volume import REPORT_FACTS, HeaderFacts
from medmm.runs import RunConfig, connect, create_private, immediate

SCHEMA_VERSION = 9
DECISIONS = ("true_error", "false_positive", "uncertain")
# The header facts the store keeps: the report facts of the one header type (medmm.imaging.HeaderFacts).
HEADER_COLUMNS = REPORT_FACTS

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
    # v3: one header type (``sex`` -> ``patient_sex`` as in HeaderFacts); result notes (a rule that
    # raised is recorded, never dropped); the run's kind (the RunConfig that keyed it is in runs.config)
    3: """
    ALTER TABLE studies RENAME COLUMN sex TO patient_sex;
    ALTER TABLE results ADD COLUMN notes TEXT;
    ALTER TABLE flags ADD COLUMN rule TEXT;
    """,
    # v4: tamper evidence: the review hash chain (columns filled for existing rows by
    # _migrate_v4) and the integrity triggers of TRIGGERS (replacing v1's two review triggers)
    4: """
    DROP TRIGGER IF EXISTS reviews_append_only_update;
    DROP TRIGGER IF EXISTS reviews_append_only_delete;
    ALTER TABLE reviews ADD COLUMN prev_hash TEXT;
    ALTER TABLE reviews ADD COLUMN row_hash TEXT;
    """,
    # v5 (issue 19, hospital audits): how a hospital names a study (accession number, Study Instance UID,
    # exam date / time / description, the source kind); a watermark per source (nightly incremental runs);
    # report versions (a corrected report is a new study row that supersedes the earlier one, whose result
    # stays as history); publications (results written back to a PACS / EHR)
    5: """
    ALTER TABLE studies ADD COLUMN source TEXT;
    ALTER TABLE studies ADD COLUMN accession_number TEXT;
    ALTER TABLE studies ADD COLUMN study_instance_uid TEXT;
    ALTER TABLE studies ADD COLUMN exam_date TEXT;
    ALTER TABLE studies ADD COLUMN exam_time TEXT;
    ALTER TABLE studies ADD COLUMN exam_description TEXT;
    CREATE INDEX studies_accession ON studies(accession_number);
    CREATE INDEX studies_study_uid ON studies(study_instance_uid);
    CREATE TABLE watermarks (source TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at REAL NOT NULL);
    CREATE TABLE report_versions (
        study_key TEXT PRIMARY KEY REFERENCES studies(key),
        supersedes TEXT REFERENCES studies(key),
        status TEXT,
        received_at REAL NOT NULL
    );
    CREATE INDEX report_versions_supersedes ON report_versions(supersedes);
    CREATE TABLE publications (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        study_key TEXT NOT NULL REFERENCES studies(key),
        config_key TEXT NOT NULL,
        target TEXT NOT NULL,
        format TEXT NOT NULL,
        content_sha256 TEXT NOT NULL,
        sop_instance_uid TEXT,
        version INTEGER NOT NULL,
        at REAL NOT NULL
    );
    CREATE INDEX publications_study ON publications(study_key, target);
    """,
}
_MIGRATIONS[6] = (  # issue 20: one hash chain over runs/results/flags/failures/reviews/access log; the access
    # log; app sessions and login back-off counters (survive a restart). Filled and triggered by _migrate_v6.
    chain.SCHEMA + access_log.SCHEMA + logins.SCHEMA)
# v7 (issue 19, a hospital-year in the store): the worklist order stored with each result and indexed, with the
# flag count, top confidence and flag types beside it (medmm.audit.worklist asks for one page and the counts,
# never the whole list), and reviews indexed by study (a study's status is a lookup, not a scan). Filled for
# existing results by _migrate_v7. The worklist index covers the filters (modality, run, flag types): a filtered
# count reads the index, not the table.
_MIGRATIONS[7] = """
    ALTER TABLE results ADD COLUMN sort_key TEXT;
    ALTER TABLE results ADD COLUMN n_flags INTEGER;
    ALTER TABLE results ADD COLUMN top_confidence REAL;
    ALTER TABLE results ADD COLUMN flag_types TEXT;
    ALTER TABLE results ADD COLUMN modality TEXT;
    CREATE TABLE worklist_modalities (config_key TEXT NOT NULL, modality TEXT NOT NULL,
                                      PRIMARY KEY (config_key, modality));
    CREATE INDEX reviews_study ON reviews(study_key);
    CREATE INDEX results_worklist ON results(config_key, sort_key, modality, run_id, flag_types);
    """
# v8 (issue 20 N5, verifier's round): studies and reports join the hash chain (backfilled, then triggered by the
# v8 step of _migrate); the worklist columns of results are checked by Store.verify against the chained flags.
_MIGRATIONS[8] = ""
# v9 (issue 18 item 6, issue 21 item 3): a flag's provenance — the model that raised it (NULL for rules), its
# decoded region (a medmm.regions.Box dict, JSON) and the related spans of a conflict (JSON [{start, end, text}]) —
# chained for flags written from v9 (chain.FLAG_V9_COLUMNS; the v9 step re-creates the flag chain trigger).
_MIGRATIONS[9] = """
    ALTER TABLE flags ADD COLUMN model TEXT;
    ALTER TABLE flags ADD COLUMN region TEXT;
    ALTER TABLE flags ADD COLUMN related TEXT;
    """
# The identity columns of a study (v5), as the study record (medmm.studies.Study) names them.
STUDY_ID_COLUMNS: tuple[str, ...] = ("source", "accession_number", "study_instance_uid", "exam_date", "exam_time",
                                     "exam_description")

GENESIS = "0" * 64  # prev_hash of the first review
_REVIEW_HASHED = ("id", "flag_id", "study_key", "reviewer", "decision", "comment", "at")


def _append_only(table: str, key_match: str, noun: str) -> dict[str, str]:
    """UPDATE, DELETE and same-key INSERT (hence REPLACE) triggers for an append-only table."""
    msg = f"{noun} are append-only: add a new row instead"
    return {
        f"{table}_append_only_update":
            f"CREATE TRIGGER {table}_append_only_update BEFORE UPDATE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{msg}'); END",
        f"{table}_append_only_delete":
            f"CREATE TRIGGER {table}_append_only_delete BEFORE DELETE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{msg}'); END",
        f"{table}_no_replace":
            f"CREATE TRIGGER {table}_no_replace BEFORE INSERT ON {table} "
            f"WHEN EXISTS (SELECT 1 FROM {table} WHERE {key_match}) "
            f"BEGIN SELECT RAISE(ABORT, '{msg} (REPLACE is refused)'); END",
    }


# Every integrity trigger of the store, by name. Checked on open (name and text) and by verify().
TRIGGERS: dict[str, str] = {
    **_append_only("studies", "key = NEW.key OR source_hash = NEW.source_hash", "studies"),
    **_append_only("reports", "study_key = NEW.study_key", "reports"),
    **_append_only("results", "study_key = NEW.study_key AND config_key = NEW.config_key", "results"),
    **_append_only("flags", "id = NEW.id", "flags"),
    **_append_only("failures", "id = NEW.id", "failures"),
    **_append_only("reviews", "id = NEW.id", "reviews"),
    "reviews_chain":
        "CREATE TRIGGER reviews_chain BEFORE INSERT ON reviews "
        "WHEN NEW.row_hash IS NULL OR NEW.prev_hash IS NOT "
        f"COALESCE((SELECT row_hash FROM reviews ORDER BY id DESC LIMIT 1), '{GENESIS}') "
        "BEGIN SELECT RAISE(ABORT, 'reviews are append-only and hash-chained: add reviews through medmm'); END",
    "runs_frozen":
        "CREATE TRIGGER runs_frozen BEFORE UPDATE OF id, config_key, checker, model_fingerprint, config, "
        "medmm_version, started_at ON runs "
        "BEGIN SELECT RAISE(ABORT, 'runs are append-only: only the finish time is set'); END",
    "runs_append_only_delete":
        "CREATE TRIGGER runs_append_only_delete BEFORE DELETE ON runs "
        "BEGIN SELECT RAISE(ABORT, 'runs are append-only'); END",
    "runs_no_replace":
        "CREATE TRIGGER runs_no_replace BEFORE INSERT ON runs WHEN EXISTS (SELECT 1 FROM runs WHERE id = NEW.id) "
        "BEGIN SELECT RAISE(ABORT, 'runs are append-only (REPLACE is refused)'); END",
}


# v6: the access log is append-only too, and every covered write gets a chain entry (medmm.audit.chain)
_V6_TRIGGERS: dict[str, str] = {**_append_only("access_log", "id = NEW.id", "access-log entries"), **chain.TRIGGERS}
TRIGGERS.update(_V6_TRIGGERS)
# v8: the chain also covers studies (images, folder, header facts, identity) and report texts
TRIGGERS.update(chain.V8_TRIGGERS)
# v9: the flag chain trigger covers the provenance columns
TRIGGERS.update(chain.V9_TRIGGERS)


def review_hash(prev_hash: str, row: dict[str, Any]) -> str:
    """SHA-256 over the previous review's hash and this review's fields (canonical JSON)."""
    payload = json.dumps([row[k] for k in _REVIEW_HASHED], separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256((prev_hash + payload).encode("ascii")).hexdigest()


def _norm_sql(sql: str | None) -> str:
    return " ".join((sql or "").split())


@dataclass(frozen=True)
class VerifyReport:
    """What :meth:`Store.verify` found: the first broken review (if any) and trigger problems."""

    reviews: int
    head: str  # row_hash of the last review (GENESIS when none): record it to detect a recomputed chain
    trigger_problems: tuple[str, ...] = ()
    broken_review: int | None = None  # id of the first review whose chain does not hold
    reason: str | None = None
    chain_entries: int = 0  # v6: the chain over runs, results, flags, failures, reviews and the access log
    chain_head: str = GENESIS  # record it elsewhere with each backup
    chain_problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()  # schema objects medmm did not create (tables, indexes, views)

    @property
    def ok(self) -> bool:
        return not self.trigger_problems and self.broken_review is None and not self.chain_problems


class StoreError(MedmmError):
    """The review store cannot be opened or written (corrupt file, newer schema, bad value)."""


class ReportChanged(StoreError):
    """A study's report differs from the one stored first (stored flags point into the stored text)."""


@dataclass(frozen=True)
class StudyRecord:
    source_id: str  # the identifier as found (never stored raw)
    source_path: str | None
    header: HeaderFacts | dict[str, Any] | None  # converted through HeaderFacts.from_mapping
    report: str | None
    images: tuple[str, ...] = ()
    regions: tuple[dict[str, Any], ...] = ()  # boxes: {"image", "slice", "x1", "y1", "x2", "y2", "label"}
    source: str | None = None  # folder | manifest | synthetic | dicomweb | dimse ... (v5 columns from here)
    accession_number: str | None = None
    study_instance_uid: str | None = None
    exam_date: str | None = None  # YYYY-MM-DD
    exam_time: str | None = None
    exam_description: str | None = None
    supersedes: str | None = None  # study key of the earlier report version this one corrects (Store.current_version)
    report_status: str | None = None  # F / C / P as the feed said


class Store:
    """A handle on one store file. Not shared between processes: each process opens its own."""

    def __init__(self, path: str, timeout: float = 60.0, check_triggers: bool = True) -> None:
        self.path = path
        if os.path.isdir(path):
            raise InputError(f"{path}: is a folder; give a file path for the store (e.g. audit.sqlite)")
        if not os.path.exists(path):
            parent = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(parent):
                raise InputError(f"{path}: the folder for the store does not exist; create it first")
            create_private(path)  # PHI-bearing: owner only
        try:
            self.conn = connect(path, timeout, foreign_keys=True)
            chain.register(self.conn)  # the SQL functions the chain triggers call
            # a REPLACE's hidden delete then fires the DELETE triggers too
            self.conn.execute("PRAGMA recursive_triggers=ON")
            self._migrate()
            self._flag_v9 = SCHEMA_VERSION >= 9
            problems = self.trigger_problems()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path}: not a medmm store or corrupt ({exc})") from exc
        if problems and check_triggers:
            self.conn.close()
            raise StoreError(f"{path}: the store's integrity triggers were changed ({'; '.join(problems)}): someone "
                             "may have rewritten results or reviews. Do not review from it: run `medmm store verify "
                             f"--db {path}`, restore the store from a backup, or (if the change was a deliberate "
                             f"repair) re-create the triggers with `medmm store verify --db {path} --restore-triggers`")
        self.salt = bytes.fromhex(self._meta("salt"))
        for side in ("", "-wal", "-shm"):
            if os.path.exists(path + side) and os.stat(path + side).st_mode & 0o077:
                try:
                    os.chmod(path + side, 0o600)
                except OSError:  # not the owner (a reviewer's read-only copy): leave it
                    pass

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
                if v == 4:
                    self._migrate_v4(c)
                if v == 6:
                    chain.backfill(c)  # rows written before v6, then the v6 triggers
                    for sql in _V6_TRIGGERS.values():
                        c.execute(sql)
                if v == 7:
                    self._migrate_v7(c)
                if v == 8:
                    chain.backfill_v8(c)  # studies and reports stored before v8, then their triggers
                if v == 9:
                    chain.upgrade_v9(c)  # the flag chain trigger over model, region, related
                c.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)", (str(v),))
            if not c.execute("SELECT 1 FROM meta WHERE key='salt'").fetchone():
                c.execute("INSERT INTO meta(key, value) VALUES ('salt', ?)", (secrets.token_hex(16),))

    @staticmethod
    def _migrate_v4(c: sqlite3.Connection) -> None:
        """Chain the reviews already stored (in id order), then create the integrity triggers."""
        prev = GENESIS
        rows = c.execute("SELECT " + ", ".join(_REVIEW_HASHED) + " FROM reviews ORDER BY id").fetchall()
        for row in rows:
            h = review_hash(prev, dict(zip(_REVIEW_HASHED, row)))
            c.execute("UPDATE reviews SET prev_hash=?, row_hash=? WHERE id=?", (prev, h, row[0]))
            prev = h
        for name, sql in TRIGGERS.items():
            if name not in _V6_TRIGGERS and name not in chain.V8_TRIGGERS:  # created by the v6 / v8 steps
                c.execute(sql)

    @staticmethod
    def _migrate_v7(c: sqlite3.Connection) -> None:
        """Fill the worklist columns of existing results from their flags (results are append-only: the
        UPDATE trigger is lifted for this one fill, inside the migration's transaction, and restored)."""
        rows = list(_derived_worklist(c))
        if not rows:
            return
        c.execute("DROP TRIGGER IF EXISTS results_append_only_update")
        c.executemany("UPDATE results SET sort_key=?, n_flags=?, top_confidence=?, flag_types=?, modality=? "
                      "WHERE rowid=?", [(*want, rowid) for rowid, _, _, want in rows])
        c.execute(TRIGGERS["results_append_only_update"])
        c.execute("INSERT OR IGNORE INTO worklist_modalities(config_key, modality) SELECT DISTINCT config_key, "
                  "modality FROM results WHERE modality IS NOT NULL")

    # ------------------------------------------------------------------ integrity
    def trigger_problems(self) -> list[str]:
        """Integrity triggers that are missing or whose text differs from :data:`TRIGGERS`."""
        have = dict(self.conn.execute("SELECT name, sql FROM sqlite_master WHERE type='trigger'").fetchall())
        problems = []
        for name, sql in TRIGGERS.items():
            if name not in have:
                problems.append(f"trigger {name} is missing")
            elif _norm_sql(have[name]) != _norm_sql(sql):
                problems.append(f"trigger {name} was altered")
        for name in sorted(set(have) - set(TRIGGERS)):  # e.g. one that silently swallows reviews (RAISE(IGNORE))
            problems.append(f"trigger {name} was not created by medmm (it can change or swallow writes)")
        return problems

    def foreign_objects(self) -> list[str]:
        """Tables, indexes and views the store's migrations did not create (warnings; triggers are refused)."""
        import re

        made = set()
        for script in _MIGRATIONS.values():
            made |= set(re.findall(r"CREATE\s+(?:TABLE|INDEX|VIEW)\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", script, re.I))
            made -= set(re.findall(r"DROP\s+(?:TABLE|INDEX|VIEW)\s+(?:IF\s+EXISTS\s+)?(\w+)", script, re.I))
        return [f"{kind} {name} was not created by medmm" for kind, name in self.conn.execute(
                "SELECT type, name FROM sqlite_master WHERE type IN ('table', 'index', 'view') ORDER BY name")
                if not name.startswith("sqlite_") and name not in made]

    def restore_triggers(self) -> list[str]:
        """Re-create missing or altered integrity triggers; returns their names (an administrator's repair)."""
        fixed = []
        with self.transaction() as c:
            for problem in self.trigger_problems():
                name = problem.split()[1]
                c.execute(f'DROP TRIGGER IF EXISTS "{name}"')
                if name in TRIGGERS:  # a trigger medmm did not create is dropped
                    c.execute(TRIGGERS[name])
                fixed.append(name)
        return fixed

    def verify(self) -> VerifyReport:
        """Check the integrity triggers and the review hash chain (first broken row, if any)."""
        problems = tuple(self.trigger_problems())
        found = chain.verify(self.conn)
        derived = tuple(self.worklist_problems())
        extra = {"chain_entries": found.entries, "chain_head": found.head, "chain_problems": found.problems + derived,
                 "warnings": tuple(self.foreign_objects())}
        prev, n = GENESIS, 0
        cols = (*_REVIEW_HASHED, "prev_hash", "row_hash")
        for row in self.conn.execute("SELECT " + ", ".join(cols) + " FROM reviews ORDER BY id"):
            d = dict(zip(cols, row))
            n += 1
            if d["prev_hash"] != prev:
                return VerifyReport(n, prev, problems, d["id"], "its prev_hash is not the previous review's hash "
                                    "(a review was removed, inserted or reordered)", **extra)
            if review_hash(prev, d) != d["row_hash"]:
                return VerifyReport(n, prev, problems, d["id"], "its content does not match its row_hash "
                                    "(the review was rewritten)", **extra)
            prev = d["row_hash"]
        return VerifyReport(n, prev, problems, **extra)

    def worklist_problems(self, max_problems: int = 20) -> list[str]:
        """Results whose worklist columns (v7: sort key, flag count, top confidence, flag types, modality) differ
        from what the chained flags, score and study give. Those columns are derived, not chained: recomputing
        them here catches an edit that would hide a flagged study from the worklist (one pass, grouped in SQL)."""
        problems: list[str] = []
        for _, ref, stored, want in _derived_worklist(self.conn):
            if stored != want:
                problems.append(f"result {ref}: its worklist columns differ from its flags (changed outside "
                                "medmm: a flagged study could be hidden from the worklist)")
                if len(problems) >= max_problems:
                    break
        return problems

    def record_access(self, event: str, user: str, study_key: str | None = None, client: str | None = None,
                      detail: dict[str, Any] | None = None) -> int:
        """Append one access-log event (:mod:`medmm.audit.access_log`), hash-chained."""
        with self.transaction() as c:
            return access_log.record(c, event, user, study_key, client, detail)

    def _meta(self, key: str) -> str:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        if row is None:
            raise StoreError(f"{self.path}: meta key {key!r} missing")
        return row[0]

    @property
    def schema_version(self) -> int:
        return int(self._meta("schema_version"))

    def transaction(self) -> Any:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back on any exception): :func:`medmm.runs.immediate`."""
        return immediate(self.conn)

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
    def start_run(self, run: RunConfig) -> tuple[int, str]:
        """Record a run of configuration ``run``; returns (run id, config key = ``run.key``)."""
        config_key = run.key
        with self.transaction() as c:
            cur = c.execute("INSERT INTO runs(config_key, checker, model_fingerprint, config, medmm_version, started_at) "
                            "VALUES (?, ?, ?, ?, ?, ?)", (config_key, str(run.get("checker", run.kind)), run.get("model"),
                                                          json.dumps(run.to_dict(), sort_keys=True), __version__,
                                                          time.time()))
            return int(cur.lastrowid), config_key

    def configurations(self) -> list[dict[str, Any]]:
        """Configurations with results in this store, newest run first (the result counts are index range
        counts, cached per results version: the app asks on every rerun)."""
        from medmm.audit.worklist import MEMO

        version = self.conn.execute("SELECT COALESCE(MAX(rowid), 0), (SELECT COALESCE(MAX(id), 0) FROM runs) "
                                    "FROM results").fetchone()
        return MEMO.get((self.salt.hex(), "configurations", tuple(version)), lambda: [
            {"config_key": k, "last_run": rid, "checker": chk, "config": json.loads(cfg), "results": int(n)}
            for k, rid, chk, cfg, n in self.conn.execute(
                "SELECT r.config_key, MAX(r.id), r.checker, r.config, "
                "(SELECT COUNT(*) FROM results x WHERE x.config_key = r.config_key) "
                "FROM runs r GROUP BY r.config_key ORDER BY MAX(r.id) DESC").fetchall()])

    def latest_config_key(self) -> str | None:
        """The configuration of the newest run that wrote a result (what the worklist shows by default)."""
        # results are append-only: the last row written is the newest (finished_at is not indexed)
        row = self.conn.execute("SELECT config_key FROM results ORDER BY rowid DESC LIMIT 1").fetchone()
        return row[0] if row else None

    def finish_run(self, run_id: int) -> None:
        with self.transaction() as c:
            c.execute("UPDATE runs SET finished_at=? WHERE id=?", (time.time(), run_id))

    def finished_sources(self, config_key: str) -> set[str]:
        """Source hashes already done (or failed) under this configuration."""
        rows = self.conn.execute("SELECT s.source_hash FROM results r JOIN studies s ON s.key = r.study_key "
                                 "WHERE r.config_key=?", (config_key,)).fetchall()
        return {r[0] for r in rows}

    def finished_among(self, config_key: str, source_hashes: Sequence[str]) -> set[str]:
        """Those of ``source_hashes`` already done (or failed) under this configuration: one indexed lookup per
        work unit (an audit's worker asks for its own unit instead of loading every finished study)."""
        out: set[str] = set()
        for i in range(0, len(source_hashes), 500):
            part = list(source_hashes[i:i + 500])
            rows = self.conn.execute("SELECT s.source_hash FROM studies s JOIN results r ON r.study_key = s.key "
                                     "AND r.config_key = ? WHERE s.source_hash IN (" + ",".join("?" * len(part)) + ")",
                                     (config_key, *part)).fetchall()
            out.update(r[0] for r in rows)
        return out

    # ------------------------------------------------------------------ writing results
    def record_result(self, run_id: int, config_key: str, rec: StudyRecord, result: Any) -> bool:
        """Store a study's check result and flags atomically. Returns False if another writer
        already finished this study under the same configuration (nothing is duplicated), or if the
        study's report differs from the stored one (recorded as a failure with the reason: a batch
        goes on)."""
        return self.record_batch(run_id, config_key, [(rec, result, None)])[0] == "result"

    def record_failure(self, run_id: int, config_key: str, rec: StudyRecord, stage: str, reason: str) -> bool:
        """Store that a study could not be checked (stage, reason); False if it was already finished."""
        return self.record_batch(run_id, config_key, [(rec, None, (stage, reason))])[0] == "failure"

    def record_batch(self, run_id: int, config_key: str,
                     entries: Sequence[tuple[StudyRecord, Any, tuple[str, str] | None]]) -> list[str]:
        """Many studies in ONE transaction (an audit commits per batch, not per study: a commit and its lock
        cost more than a study's rows). Each entry is ``(record, result, None)`` or ``(record, None, (stage,
        reason))``; returns per entry ``"result"``, ``"failure"`` (also a result whose report differs from the
        stored one: recorded as a failure with the reason) or ``"duplicate"`` (already finished under this
        configuration, by another writer or earlier in the batch). All or nothing: a process killed mid-batch
        leaves the store as it was before the batch.

        What is already stored is looked up for the whole batch at once (studies, reports, results of this
        configuration), then each table gets one multi-row INSERT in entry order (studies, report versions,
        reports, results, flags, failures): a few statements per batch instead of about ten per study. The
        integrity triggers and the hash chain see every row as before."""
        if not entries:
            return []
        hashes = [self.source_hash(rec.source_id) for rec, _, _ in entries]
        keys = ["S" + h[:16] for h in hashes]  # Store.study_key
        with self.transaction() as c:
            return self._write_batch(c, run_id, config_key, entries, hashes, keys)

    def _write_batch(self, c: sqlite3.Connection, run_id: int, config_key: str,
                     entries: Sequence[tuple[StudyRecord, Any, tuple[str, str] | None]], hashes: list[str],
                     keys: list[str]) -> list[str]:
        uniq = list(dict.fromkeys(keys))
        modality_of: dict[str, str | None] = dict(_select_in(c, "SELECT key, modality FROM studies WHERE key IN ({})",
                                                             uniq))
        report_of = dict(_select_in(c, "SELECT study_key, sha256 FROM reports WHERE study_key IN ({})", uniq))
        done = {r[0] for r in _select_in(c, "SELECT study_key FROM results WHERE config_key = ? AND study_key IN ({})",
                                         uniq, (config_key,))}
        now = time.time()
        studies: list[tuple[Any, ...]] = []
        versions: list[tuple[Any, ...]] = []
        reports: list[tuple[Any, ...]] = []
        results: list[tuple[Any, ...]] = []
        flags: list[tuple[Any, ...]] = []
        failures: list[tuple[Any, ...]] = []
        modalities: set[str] = set()
        v9 = self._flag_v9  # the provenance columns (a store opened at an older SCHEMA_VERSION, in tests, lacks them)
        out: list[str] = []
        for (rec, result, failure), h, key in zip(entries, hashes, keys):
            if key not in modality_of:  # a new study (append-only: a stored one is never replaced)
                header = (HeaderFacts.from_mapping(rec.header) or HeaderFacts()).to_dict(report_facts_only=True)
                facts = [(str(header.get(k)) if header.get(k) not in (None, "") else None) for k in HEADER_COLUMNS]
                studies.append((key, h, rec.source_path, *facts, now, json.dumps(list(rec.images)),
                                json.dumps(list(rec.regions)), *[getattr(rec, k) for k in STUDY_ID_COLUMNS]))
                modality_of[key] = facts[_MODALITY]
                if rec.supersedes is not None or rec.report_status is not None:
                    old = rec.supersedes
                    if old is not None and old not in modality_of and \
                            not c.execute("SELECT 1 FROM studies WHERE key=?", (old,)).fetchone():
                        old = None
                    versions.append((key, old, rec.report_status, now))
            if rec.report is not None:
                digest = hashlib.sha256(rec.report.encode("utf-8", "replace")).hexdigest()
                stored = report_of.get(key)
                if stored is None:
                    reports.append((key, rec.report, digest))
                    report_of[key] = digest
                elif stored != digest and failure is None:  # stored flags point into the stored text: never swap it
                    failure = ("store", f"study {key}: its report differs from the one stored earlier; the store keeps "
                               "reports unchanged (flags point into them): audit the changed report into a new store")
            if key in done:
                out.append("duplicate")
                continue
            done.add(key)
            modality = modality_of.get(key)
            if modality is not None:
                modalities.add(modality)
            if failure is None:
                found = list(result.flags)
                score = float(result.score)
                notes = list(getattr(result, "notes", None) or [])
                top = max((float(f.confidence) for f in found), default=None)
                results.append((key, config_key, run_id, "done", int(result.has_error), score, now,
                                json.dumps(notes) if notes else None,
                                *_worklist_columns(key, False, score, len(found), top, [f.type for f in found]),
                                modality))
                flags.extend((run_id, key, config_key, f.type, f.start, f.end, f.text, f.explanation, f.confidence,
                              f.evidence, getattr(f, "rule", None) or None, *(flag_provenance(f) if v9 else ()))
                             for f in found)
                out.append("result")
            else:
                results.append((key, config_key, run_id, "failed", None, None, now, None,
                                _worklist_columns(key, True, None, 0, None, ())[0], 0, None, None, modality))
                failures.append((run_id, key, h, failure[0], failure[1], now))
                out.append("failure")
        if studies:
            c.executemany(_STUDY_INSERT, studies)
        if versions:
            c.executemany("INSERT INTO report_versions(study_key, supersedes, status, received_at) VALUES (?, ?, ?, ?)",
                          versions)
        if reports:
            c.executemany("INSERT INTO reports(study_key, text, sha256) VALUES (?, ?, ?)", reports)
        if results:
            c.executemany("INSERT INTO results(study_key, config_key, run_id, status, has_error, score, finished_at, "
                          "notes, sort_key, n_flags, top_confidence, flag_types, modality) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", results)
        if flags:
            c.executemany(_FLAG_INSERT[v9], flags)
        if failures:
            c.executemany("INSERT INTO failures(run_id, study_key, source_hash, stage, reason, at) "
                          "VALUES (?, ?, ?, ?, ?, ?)", failures)
        if modalities:  # the worklist filter's choices per configuration, without a scan
            c.executemany("INSERT OR IGNORE INTO worklist_modalities(config_key, modality) VALUES (?, ?)",
                          [(config_key, m) for m in sorted(modalities)])
        return out

    # ------------------------------------------------------------------ hospital sources (v5)
    def watermark(self, source: str) -> str | None:
        """The high-water mark of a source (e.g. the newest exam date checked), or None before its first run."""
        row = self.conn.execute("SELECT value FROM watermarks WHERE source=?", (source,)).fetchone()
        return row[0] if row else None

    def set_watermark(self, source: str, value: str) -> None:
        """Move a source's watermark (never backwards: a run over an older ``--since`` window keeps it)."""
        with self.transaction() as c:
            row = c.execute("SELECT value FROM watermarks WHERE source=?", (source,)).fetchone()
            if row is None:
                c.execute("INSERT INTO watermarks(source, value, updated_at) VALUES (?, ?, ?)", (source, value, time.time()))
            elif value > row[0]:
                c.execute("UPDATE watermarks SET value=?, updated_at=? WHERE source=?", (value, time.time(), source))

    def current_version(self, study_instance_uid: str) -> str | None:
        """The study key of the newest report version checked for a DICOM study (None if none)."""
        row = self.conn.execute(
            "SELECT s.key FROM studies s JOIN reports r ON r.study_key = s.key WHERE s.study_instance_uid=? AND NOT "
            "EXISTS (SELECT 1 FROM report_versions v WHERE v.supersedes = s.key) ORDER BY s.created_at DESC, s.rowid DESC "
            "LIMIT 1", (study_instance_uid,)).fetchone()
        return row[0] if row else None

    def has_source(self, source_id: str) -> bool:
        """Whether a study with this source identifier is in the store (whatever its result)."""
        return self.conn.execute("SELECT 1 FROM studies WHERE source_hash=?",
                                 (self.source_hash(source_id),)).fetchone() is not None

    def report_history(self, key: str) -> list[dict[str, Any]]:
        """The report versions of a study, oldest first: each version's study key, status and result
        (a corrected report is a new version; the earlier ones and their results are kept)."""
        chain = [key]
        while True:  # back to the first version
            row = self.conn.execute("SELECT supersedes FROM report_versions WHERE study_key=?", (chain[0],)).fetchone()
            if row is None or row[0] is None or row[0] in chain:
                break
            chain.insert(0, row[0])
        while True:  # forward to the newest
            row = self.conn.execute("SELECT study_key FROM report_versions WHERE supersedes=? ORDER BY received_at DESC "
                                    "LIMIT 1", (chain[-1],)).fetchone()
            if row is None or row[0] in chain:
                break
            chain.append(row[0])
        out = []
        for k in chain:
            v = self.conn.execute("SELECT status, received_at FROM report_versions WHERE study_key=?", (k,)).fetchone()
            r = self.conn.execute("SELECT status, has_error, score, config_key FROM results WHERE study_key=? "
                                  "ORDER BY finished_at DESC LIMIT 1", (k,)).fetchone()
            text = self.conn.execute("SELECT text FROM reports WHERE study_key=?", (k,)).fetchone()
            out.append({"study_key": k, "report_status": v[0] if v else None, "received_at": v[1] if v else None,
                        "result": dict(zip(("status", "has_error", "score", "config_key"), r)) if r else None,
                        "report": text[0] if text else None, "current": k == chain[-1]})
        return out

    def record_publication(self, study_key: str, config_key: str, target: str, fmt: str, content_sha256: str,
                           sop_instance_uid: str | None) -> int:
        """Record that a study's result was written to ``target``; returns the version number (1, 2, ...)."""
        with self.transaction() as c:
            row = c.execute("SELECT MAX(p.version) FROM publications p JOIN studies s ON s.key = p.study_key "
                            "WHERE p.target=? AND p.format=? AND (p.study_key=? OR s.study_instance_uid = "
                            "(SELECT study_instance_uid FROM studies WHERE key=?))",
                            (target, fmt, study_key, study_key)).fetchone()
            version = int(row[0] or 0) + 1
            c.execute("INSERT INTO publications(study_key, config_key, target, format, content_sha256, sop_instance_uid, "
                      "version, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                      (study_key, config_key, target, fmt, content_sha256, sop_instance_uid, version, time.time()))
            return version

    def results_to_publish(self, config_key: str | None = None) -> list[dict[str, Any]]:
        """The current report version of every study with a DICOM Study Instance UID and a done result under one
        configuration (default: the newest run's), with its flags: what ``medmm publish`` writes back."""
        config_key = config_key if config_key is not None else self.latest_config_key()
        rows = self.conn.execute(
            "SELECT s.key, s.study_instance_uid, s.accession_number, r.has_error, r.score, r.config_key, u.checker "
            "FROM studies s JOIN results r ON r.study_key = s.key JOIN runs u ON u.id = r.run_id "
            "WHERE r.config_key = ? AND r.status = 'done' AND s.study_instance_uid IS NOT NULL "
            "AND NOT EXISTS (SELECT 1 FROM report_versions v WHERE v.supersedes = s.key) ORDER BY s.key",
            (config_key,)).fetchall()
        out = []
        for key, uid, acc, has_error, score, ck, checker in rows:
            flags = self.conn.execute(f"SELECT {_FLAG_SELECT} FROM flags "  # noqa: S608 - fixed columns
                                      "WHERE study_key=? AND config_key=? ORDER BY start, id", (key, ck)).fetchall()
            out.append({"study_key": key, "study_instance_uid": uid, "accession_number": acc,
                        "has_error": bool(has_error), "score": score, "config_key": ck, "checker": checker,
                        "flags": [{k: v for k, v in flag_from_row(f).items() if k != "id"} for f in flags]})
        return out

    def publications(self, study_key: str, target: str, fmt: str) -> list[dict[str, Any]]:
        """What was published for a DICOM study to ``target``, oldest first — over every report version of the
        study (a corrected report is another study row with the same Study Instance UID)."""
        rows = self.conn.execute(
            "SELECT p.version, p.content_sha256, p.sop_instance_uid, p.config_key, p.at FROM publications p "
            "JOIN studies s ON s.key = p.study_key WHERE p.target=? AND p.format=? AND (p.study_key=? OR "
            "s.study_instance_uid = (SELECT study_instance_uid FROM studies WHERE key=?)) ORDER BY p.at, p.id",
            (target, fmt, study_key, study_key))
        return [dict(zip(("version", "content_sha256", "sop_instance_uid", "config_key", "at"), r)) for r in rows]

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
            last = c.execute("SELECT id, row_hash FROM reviews ORDER BY id DESC LIMIT 1").fetchone()
            row = {"id": (last[0] + 1) if last else 1, "flag_id": flag_id, "study_key": study_key, "reviewer": reviewer,
                   "decision": decision, "comment": comment, "at": time.time()}
            prev = last[1] if last else GENESIS
            c.execute("INSERT INTO reviews(id, flag_id, study_key, reviewer, decision, comment, at, prev_hash, row_hash) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (*[row[k] for k in _REVIEW_HASHED], prev,
                                                              review_hash(prev, row)))
            if not c.execute("SELECT 1 FROM reviews WHERE id=?", (row["id"],)).fetchone():  # a foreign trigger ate it
                raise StoreError("the review was not saved: the store has a trigger medmm did not create; tell an "
                                 "administrator to run `medmm store verify`")
            return int(row["id"])

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

    def _config_or_latest(self, config_key: str | None) -> str | None:
        return config_key if config_key is not None else self.latest_config_key()

    def worklist(self, config_key: str | None = None) -> list[dict[str, Any]]:
        """EVERY study with its result under one configuration (default: the newest run's), flag counts and
        review status, riskiest first (the most confident flag, then the score). For small stores, exports
        and tests: the app asks :class:`medmm.audit.worklist.Worklist` for one page and the counts."""
        from dataclasses import asdict

        from medmm.audit.worklist import Worklist

        return [asdict(r) | {"flag_types": list(r.flag_types)}
                for r in Worklist(self, self._config_or_latest(config_key)).all_rows()]

    def worklist_view(self, config_key: str | None = None) -> Any:
        """The paged worklist of one configuration (default: the newest run's): :class:`medmm.audit.worklist.Worklist`."""
        from medmm.audit.worklist import Worklist

        return Worklist(self, self._config_or_latest(config_key))

    def study(self, key: str, config_key: str | None = None) -> dict[str, Any] | None:
        """One study for the review app: header facts, report, images, known regions, and the flags of one
        configuration (default: the newest run's). No source path: the app never shows one."""
        row = self.conn.execute("SELECT s.key, s.modality, s.body_part, s.laterality, s.view_position, "
                                "s.patient_sex, s.images, s.regions, r.text FROM studies s LEFT JOIN reports r "
                                "ON r.study_key = s.key WHERE s.key=?", (key,)).fetchone()
        if row is None:
            return None
        cols = ["study_key", *REPORT_FACTS, "images", "regions", "report"]
        d = dict(zip(cols, row))
        d["images"] = json.loads(d["images"] or "[]")
        d["regions"] = json.loads(d["regions"] or "[]")
        config_key = self._config_or_latest(config_key)
        res = self.conn.execute("SELECT run_id, status, notes FROM results WHERE study_key=? AND config_key=?",
                                (key, config_key)).fetchone()
        d["config_key"] = config_key
        d["run_id"] = res[0] if res else None
        d["status"] = res[1] if res else None
        d["notes"] = json.loads(res[2]) if res and res[2] else []
        flags = self.conn.execute(f"SELECT {_FLAG_SELECT} FROM flags "  # noqa: S608 - fixed columns
                                  "WHERE study_key=? AND config_key=? ORDER BY start", (key, config_key)).fetchall()
        # v9: each flag's model, region (the app draws it) and related spans (the app highlights both sides)
        d["flags"] = [flag_from_row(f) | {"decision": self.latest_decision(f[0])} for f in flags]
        verdict = self.conn.execute("SELECT decision, reviewer, at FROM reviews WHERE study_key=? AND flag_id IS NULL "
                                    "ORDER BY id DESC LIMIT 1", (key,)).fetchone()
        d["verdict"] = verdict[0] if verdict else None
        return d

    def history(self, key: str) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT v.id, v.flag_id, f.type, v.reviewer, v.decision, v.comment, v.at FROM reviews v "
                                 "LEFT JOIN flags f ON f.id = v.flag_id WHERE v.study_key=? ORDER BY v.id", (key,))
        return [dict(zip(["review_id", "flag_id", "flag_type", "reviewer", "decision", "comment", "at"], r))
                for r in rows.fetchall()]

    def flag_rows(self, reviewed_only: bool = False, with_paths: bool = False,
                  config_key: str | None = None) -> list[dict[str, Any]]:
        """One row per flag with its study and the latest review decision (or None).

        ``config_key`` limits the rows to one configuration (default: all). ``source_path`` is
        included only with ``with_paths`` (folder names often carry the patient's name). A flag's provenance
        (v9): ``model`` ("" for rules), ``region`` and ``related`` as JSON text (a box dict; ``[{"start", "end",
        "text"}]``) or None, so CSV and Parquet carry them as one column each.
        """
        sql = ('SELECT f.id, f.study_key, s.source_path, s.modality, f.type, f.start, f."end", f.text, f.explanation, '
               "f.confidence, f.evidence, f.model, f.region, f.related, f.run_id, f.config_key, "
               "(SELECT r.decision FROM reviews r WHERE r.flag_id = f.id ORDER BY r.id DESC LIMIT 1), "
               "(SELECT r.reviewer FROM reviews r WHERE r.flag_id = f.id ORDER BY r.id DESC LIMIT 1) "
               "FROM flags f JOIN studies s ON s.key = f.study_key "
               + ("WHERE f.config_key = ? " if config_key is not None else "")
               + "ORDER BY f.study_key, f.start, f.id")
        cols = ["flag_id", "study_key", "source_path", "modality", "type", "start", "end", "text", "explanation",
                "confidence", "evidence", "model", "region", "related", "run_id", "config_key", "decision", "reviewer"]
        params = (config_key,) if config_key is not None else ()
        rows = [dict(zip(cols, r)) for r in self.conn.execute(sql, params).fetchall()]
        for r in rows:
            r["model"] = r["model"] or ""
        if not with_paths:
            for r in rows:
                del r["source_path"]
        return [r for r in rows if r["decision"] is not None] if reviewed_only else rows


FLAG_COLUMNS = ("id", "type", "start", "end", "text", "explanation", "confidence", "evidence", "model", "region",
                "related")
_FLAG_SELECT = 'id, type, start, "end", text, explanation, confidence, evidence, model, region, related'
_STUDY_INSERT = ("INSERT INTO studies(key, source_hash, source_path, " + ", ".join(HEADER_COLUMNS) + ", created_at, images, "
                 "regions, " + ", ".join(STUDY_ID_COLUMNS) + ") VALUES (" +
                 ", ".join("?" * (6 + len(HEADER_COLUMNS) + len(STUDY_ID_COLUMNS))) + ")")
_MODALITY = HEADER_COLUMNS.index("modality")


def _select_in(c: sqlite3.Connection, sql: str, keys: Sequence[str], params: tuple[Any, ...] = ()) -> Iterator[Any]:
    """Rows of ``sql`` (its ``IN ({})`` filled with placeholders) for ``keys``, 500 at a time."""
    for i in range(0, len(keys), 500):
        part = keys[i:i + 500]
        yield from c.execute(sql.format(",".join("?" * len(part))), (*params, *part))


_FLAG_INSERT = {  # by "has the v9 provenance columns"
    False: 'INSERT INTO flags(run_id, study_key, config_key, type, start, "end", text, explanation, confidence, '
           "evidence, rule) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    True: 'INSERT INTO flags(run_id, study_key, config_key, type, start, "end", text, explanation, confidence, '
          "evidence, rule, model, region, related) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
}


def flag_provenance(flag: Any) -> tuple[str | None, str | None, str | None]:
    """A flag's v9 columns: ``model`` (None for rules), ``region`` and ``related`` as JSON (None when absent:
    such a row keeps the v8 chain digest). Accepts :class:`medmm.reports.flags.Flag` or anything with those
    attributes (related spans as Span objects or ``{"start", "end", "text"}`` mappings)."""
    model = str(getattr(flag, "model", "") or "") or None
    region = getattr(flag, "region", None)
    related = [r if isinstance(r, dict) else {"start": int(r.start), "end": int(r.end), "text": str(r.text)}
               for r in (getattr(flag, "related", None) or ())]
    return (model, json.dumps(dict(region), sort_keys=True) if region else None,
            json.dumps(related, ensure_ascii=False) if related else None)


def flag_from_row(row: Sequence[Any]) -> dict[str, Any]:
    """A stored flag (the columns of :data:`FLAG_COLUMNS`) as the app and exports read it: ``model`` ("" for
    rules), ``region`` (a box dict or None) and ``related`` (a list of ``{"start", "end", "text"}``)."""
    d = dict(zip(FLAG_COLUMNS, row))
    d["model"] = d["model"] or ""
    d["region"] = json.loads(d["region"]) if d["region"] else None
    d["related"] = json.loads(d["related"]) if d["related"] else []
    return d


def image_path_problem(path: str) -> str | None:
    """Why the review app must not open a stored image path now, or None.

    Audits store each image's resolved path (after checking it lies inside the audited folder). A path that
    no longer resolves to itself was swapped for a symlink (or a folder above it was) after the audit: it
    could point anywhere the app can read, so it is refused (issue 20 N3, the viewer's half)."""
    if os.path.realpath(path) != os.path.normpath(os.path.abspath(path)):
        return ("this image's path now leads somewhere else than when the study was audited (a symlink was put "
                "in its place); not opened. Check the study folder and audit it again")
    return None


def _derived_worklist(c: sqlite3.Connection) -> Iterator[tuple[int, str, tuple[Any, ...], tuple[Any, ...]]]:
    """Per result: ``(rowid, "study_key|config_key", stored, derived)`` worklist columns (sort key, flag count,
    top confidence, flag types, modality), derived from its flags, score and study in one grouped pass.
    The v7 migration writes the derived ones; :meth:`Store.worklist_problems` compares them with the stored."""
    rows = c.execute("SELECT r.rowid, r.study_key, r.config_key, r.status, r.score, r.sort_key, r.n_flags, "
                     "r.top_confidence, r.flag_types, r.modality, s.modality, COUNT(f.id), MAX(f.confidence), "
                     "GROUP_CONCAT(DISTINCT f.type) FROM results r LEFT JOIN studies s ON s.key = r.study_key "
                     "LEFT JOIN flags f ON f.study_key = r.study_key AND f.config_key = r.config_key "
                     "GROUP BY r.rowid")
    for rowid, key, ck, status, score, sk, n, top, types, modality, s_modality, fn, ftop, ftypes in rows:
        want = _worklist_columns(key, status == "failed", score, int(fn), ftop, (ftypes or "").split(",") if fn else ())
        yield rowid, f"{key}|{ck}", (sk, n, top, types, modality), (*want, s_modality)


def _worklist_columns(key: str, failed: bool, score: float | None, n_flags: int, top: float | None,
                      types: Sequence[str]) -> tuple[str, int, float | None, str | None]:
    """The worklist columns of a result (v7): sort key, flag count, top confidence, ``,type,type,``."""
    from medmm.audit.worklist import sort_key

    kinds = sorted({t for t in types if t})
    return (sort_key(key, top if n_flags else None, score, failed), n_flags, top if n_flags else None,
            ("," + ",".join(kinds) + ",") if kinds else None)


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
