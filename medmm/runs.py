"""Run identity and a crash-safe result cache, shared by audits, probe runs and grounding evaluation.

**Run identity.** A :class:`RunConfig` is built from the objects a run actually uses (checker
kind and rules version, the *content* of every config file, the model fingerprint, thresholds,
prompts, seeds...), frozen, and hashed into :attr:`RunConfig.key`. The same object is handed to
the code that produces results, so what is hashed is what was used: change any part and a
resumed run recomputes instead of skipping work as done. (lm-evaluation-harness keys its cache
on a hash of the request; medmm adds the model fingerprint and the whole configuration.)

**Result cache.** :class:`ResultCache` is one SQLite file (WAL) of results keyed by
``(item_key, config_key)``. Each ``put`` commits on its own (or ``put_many`` in one
transaction), so a process killed at any moment loses nothing it committed. An ``ok`` result is
final; a ``failed`` result (or an empty one, which is stored as failed) is never returned as
done and is replaced by the next successful attempt. One process should write (the parent of a
worker pool); concurrent writers are safe too (``BEGIN IMMEDIATE`` with a busy timeout), only
slower. Files are created with mode 0600: results may quote patient data.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import math
import os
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from medmm.errors import InputError

KEY_CHARS = 16  # hex characters of a key (64 bits): collisions are not a concern at archive scale


def canonical(value: Any) -> Any:
    """A JSON-able, order-independent form of ``value`` (dataclasses, enums, paths, sets, numpy scalars)."""
    if isinstance(value, RunConfig):  # before the dataclass case: its plain form, not its frozen parts
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return canonical(value.value)
    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((canonical(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "item") and callable(value.item) and getattr(value, "shape", None) == ():  # numpy scalar
        return canonical(value.item())
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return value
    if value is None or isinstance(value, (str, int, bool)):
        return value
    raise TypeError(f"cannot put a {type(value).__name__} into a run identity: pass its fingerprint or a plain value")


def stable_hash(value: Any, chars: int = KEY_CHARS) -> str:
    """Hex SHA-256 of the canonical JSON of ``value`` (the same on every machine and Python run)."""
    text = json.dumps(canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:chars]


def file_fingerprint(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, or of a folder's files (relative names and bytes, sorted)."""
    p = Path(path)
    h = hashlib.sha256()
    if p.is_dir():
        for f in sorted(q for q in p.rglob("*") if q.is_file()):
            h.update(f.relative_to(p).as_posix().encode() + b"\0")
            h.update(hashlib.sha256(f.read_bytes()).digest())
    elif p.is_file():
        h.update(p.read_bytes())
    else:
        raise InputError(f"{p}: no such file or folder to fingerprint")
    return h.hexdigest()


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything that decides a result, frozen and hashed. Build with :meth:`build`.

    ``kind`` names the task (``"report-check"``, ``"probe"``, ``"grounding-eval"``); ``parts`` are
    named, canonicalised values. ``key`` is the hash the cache and the review store use.
    """

    kind: str
    parts: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def build(cls, kind: str, **parts: Any) -> "RunConfig":
        frozen = tuple(sorted((k, _freeze(canonical(v))) for k, v in parts.items()))
        return cls(kind=kind, parts=frozen)

    def __getitem__(self, name: str) -> Any:
        for k, v in self.parts:
            if k == name:
                return _thaw(v)
        raise KeyError(name)

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **{k: _thaw(v) for k, v in self.parts}}

    @property
    def key(self) -> str:
        return stable_hash(self.to_dict())

    def replace(self, **parts: Any) -> "RunConfig":
        merged = {k: _thaw(v) for k, v in self.parts}
        merged.update(parts)
        return RunConfig.build(self.kind, **merged)


def run_identity(config: Any, data: Mapping[str, str | os.PathLike[str] | None] | None = None,
                 code_version: str | None = None) -> dict[str, Any]:
    """A run's identity from content: its canonical configuration, the SHA-256 of every data file or folder it
    reads (by role: a file changed under the same path is a different run), and the code version.

    Used where a run resumes from what an earlier process left (fine-tuning checkpoints): equal identities,
    and only equal ones, may continue each other. An absent role (None) is recorded as None.
    """
    from medmm import __version__

    prints = {role: (file_fingerprint(path) if path else None) for role, path in sorted((data or {}).items())}
    return {"config": canonical(config), "data": prints, "code": code_version or __version__}


# ------------------------------------------------------------------ the run core's small tools

def json_clean(obj: Any) -> Any:
    """``obj`` with NaN/inf floats as None (JSON has no NaN; medmm's empty-denominator ``nan`` is written null)."""
    if isinstance(obj, float):
        return None if obj != obj or obj in (math.inf, -math.inf) else obj
    if isinstance(obj, Mapping):
        return {k: json_clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_clean(v) for v in obj]
    return obj


def write_atomic(path: str | os.PathLike[str], data: str | bytes, mode: int | None = None) -> str:
    """Write ``data`` to ``path`` all or nothing: a temporary file beside it, flushed and fsynced, then renamed
    over the target, so a reader or a crash never sees half a file. The temporary file is created exclusively
    under a random name with mode 0600 (``tempfile.mkstemp``: a symlink planted beside the target is never
    followed, and the bytes are never readable by others on the way); it gets ``mode`` before the rename (e.g.
    0o600 for files that may quote patient data), or the permissions a new file would have (0o666 less the
    umask). A symlink at ``path`` itself is replaced, never followed. Returns the path."""
    import tempfile

    p = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(p))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(p)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode if mode is not None else 0o666 & ~_umask())
        os.replace(tmp, p)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return p


def _umask() -> int:
    """The process umask: from /proc on Linux (no side effect), else by setting it and setting it back
    (Python has no getter; the set-and-restore is not atomic for other threads creating files meanwhile)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current


def write_json(path: str | os.PathLike[str], obj: Any, indent: int | None = 1, sort_keys: bool = False,
               mode: int | None = None) -> str:
    """:func:`write_atomic` of ``obj`` as JSON (NaN as null, UTF-8, a final newline)."""
    text = json.dumps(json_clean(obj), indent=indent, ensure_ascii=False, sort_keys=sort_keys) + "\n"
    return write_atomic(path, text, mode)


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[Any], mode: int | None = None) -> str:
    """:func:`write_atomic` of one JSON object per line (NaN as null)."""
    return write_atomic(path, "".join(json.dumps(json_clean(r), ensure_ascii=False) + "\n" for r in rows), mode)


def progress(total: int, desc: str, unit: str = "item", enabled: bool = True, initial: int = 0) -> Any:
    """The one progress bar (tqdm on stderr; silent when ``enabled`` is false or stderr is not a terminal).
    Use as a context manager: ``with progress(n, "probe", "sample") as bar: bar.update(k)``."""
    import sys

    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True,
                disable=(not enabled) or None)


def parse_key_values(items: Iterable[str], option: str = "--set", example: str = "key=value") -> dict[str, Any]:
    """``["a=1", "b.c=[x, y]", "d=text"]`` -> ``{"a": 1, "b.c": ["x", "y"], "d": "text"}``: the one KEY=VALUE
    reader of the command line. Values are YAML scalars or flow collections (``1e-3`` is a float, as in
    YAML 1.2); a value YAML cannot read stays the string. Raises InputError naming ``option`` for an item
    without ``=`` or with an empty key."""
    import re

    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, eq, raw = item.partition("=")
        if not eq or not key.strip():
            raise InputError(f"{option} {item!r}: use KEY=VALUE, e.g. {example}")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        if isinstance(value, str) and re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+", value.strip()):
            value = float(value)  # YAML 1.1 (PyYAML) reads 1e-3 as a string
        out[key.strip()] = value
    return out


def _freeze(v: Any) -> Any:
    """Canonical JSON values made hashable (the dataclass is frozen): dicts become sorted item tuples."""
    if isinstance(v, dict):
        return ("__dict__", tuple((k, _freeze(x)) for k, x in sorted(v.items())))
    if isinstance(v, list):
        return ("__list__", tuple(_freeze(x) for x in v))
    return v


def _thaw(v: Any) -> Any:
    if isinstance(v, tuple) and len(v) == 2 and v[0] == "__dict__":
        return {k: _thaw(x) for k, x in v[1]}
    if isinstance(v, tuple) and len(v) == 2 and v[0] == "__list__":
        return [_thaw(x) for x in v[1]]
    return v


def item_key(*parts: Any) -> str:
    """A stable key for one item of work (e.g. ``item_key(pair_id, image_slot, prompt)``)."""
    return stable_hash(list(parts))


# ------------------------------------------------------------------ the cache

_SCHEMA = """
CREATE TABLE IF NOT EXISTS configs (
    config_key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    config TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
    item_key TEXT NOT NULL,
    config_key TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    value TEXT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 1,
    updated_at REAL NOT NULL,
    PRIMARY KEY (item_key, config_key)
);
CREATE INDEX IF NOT EXISTS results_by_config ON results(config_key, status);
"""


# ------------------------------------------------------------------ SQLite plumbing shared with the review store

def create_private(path: str) -> None:
    """Create ``path`` empty with mode 0600 when missing (results and stores may quote patient data).
    SQLite gives its ``-wal``/``-shm`` files the main file's mode."""
    if not os.path.exists(path):
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def connect(path: str, timeout: float = 60.0, foreign_keys: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit: :func:`immediate`), WAL journal,
    ``synchronous=NORMAL`` (durable at each commit in WAL mode) and a busy timeout, so concurrent
    writers queue instead of failing. Raises :class:`sqlite3.DatabaseError` on a file that is not SQLite."""
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    if foreign_keys:
        conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
    return conn


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any exception (the writer lock is taken at
    the start, so a transaction never fails half-way on a lock upgrade)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, (str, list, dict, tuple)) and len(value) == 0)


class ResultCache:
    """Results keyed by ``(item_key, config_key)`` in one SQLite file (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str], timeout: float = 60.0) -> None:
        self.path = os.fspath(path)
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        create_private(self.path)
        # Several processes may open a new cache at the same moment (audit workers): switching a fresh file to
        # WAL takes an exclusive lock, and SQLite answers "database is locked" there without waiting on the
        # busy timeout, so opening retries with backoff until ``timeout``.
        deadline = time.monotonic() + timeout
        delay = 0.01
        while True:
            try:
                self.conn = connect(self.path, timeout)
                self.conn.executescript(_SCHEMA)
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                    raise InputError(f"{self.path}: not a medmm result cache ({exc}); give a new file name") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
            except sqlite3.DatabaseError as exc:
                raise InputError(f"{self.path}: not a medmm result cache ({exc}); give a new file name") from None

    def _tx(self) -> Any:
        return immediate(self.conn)

    def register(self, config: RunConfig) -> str:
        """Record a configuration (for provenance) and return its key."""
        key = config.key
        with self._tx() as c:
            c.execute("INSERT OR IGNORE INTO configs(config_key, kind, config, created_at) VALUES (?, ?, ?, ?)",
                      (key, config.kind, json.dumps(config.to_dict(), sort_keys=True), time.time()))
        return key

    def config(self, config_key: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT config FROM configs WHERE config_key=?", (config_key,)).fetchone()
        return json.loads(row[0]) if row else None

    def get(self, item: str, config_key: str) -> Any:
        """The stored value of a finished (ok) item, else None."""
        row = self.conn.execute("SELECT value FROM results WHERE item_key=? AND config_key=? AND status='ok'",
                                (item, config_key)).fetchone()
        return json.loads(row[0]) if row else None

    def status(self, item: str, config_key: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT status, error, attempts FROM results WHERE item_key=? AND config_key=?",
                                (item, config_key)).fetchone()
        return {"status": row[0], "error": row[1], "attempts": row[2]} if row else None

    def _put(self, c: sqlite3.Connection, item: str, config_key: str, value: Any, error: str | None) -> bool:
        ok = error is None and not _is_empty(value)
        if error is None and not ok:
            error = "empty result"
        payload = json.dumps(canonical(value), sort_keys=True) if ok else None
        now = time.time()
        # An ok row is final (a second writer's ok is ignored); a failed row is replaced by anything newer.
        cur = c.execute(
            "INSERT INTO results(item_key, config_key, status, value, error, updated_at) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(item_key, config_key) DO UPDATE SET status=excluded.status, value=excluded.value, "
            "error=excluded.error, attempts=results.attempts + 1, updated_at=excluded.updated_at "
            "WHERE results.status = 'failed'",
            (item, config_key, "ok" if ok else "failed", payload, error, now))
        return ok and cur.rowcount > 0

    def put(self, item: str, config_key: str, value: Any = None, error: str | None = None) -> bool:
        """Store one result (``error`` set: a failure). True when a new ok result was written."""
        with self._tx() as c:
            return self._put(c, item, config_key, value, error)

    def put_many(self, rows: Iterable[tuple[str, Any, str | None]], config_key: str) -> int:
        """Store ``(item_key, value, error)`` rows in one transaction; returns the new ok results."""
        with self._tx() as c:
            return sum(self._put(c, item, config_key, value, error) for item, value, error in rows)

    def done_keys(self, config_key: str) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT item_key FROM results WHERE config_key=? AND status='ok'",
                                                (config_key,))}

    def failed_keys(self, config_key: str) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT item_key FROM results WHERE config_key=? AND status='failed'",
                                                (config_key,))}

    def iter_results(self, config_key: str) -> Iterator[tuple[str, Any]]:
        """(item_key, value) of every ok result of a configuration, in insertion order."""
        for item, value in self.conn.execute(
                "SELECT item_key, value FROM results WHERE config_key=? AND status='ok' ORDER BY rowid", (config_key,)):
            yield item, json.loads(value)

    def counts(self, config_key: str) -> dict[str, int]:
        rows = self.conn.execute("SELECT status, COUNT(*) FROM results WHERE config_key=? GROUP BY status", (config_key,))
        out = {"ok": 0, "failed": 0}
        out.update({s: int(n) for s, n in rows})
        return out

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "ResultCache":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
