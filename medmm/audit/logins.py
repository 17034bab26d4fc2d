"""Review-app logins and failed-login counters kept in the review store (schema v5), so a restart
of the app logs nobody out and resets no back-off.

``app_sessions``: one row per logged-in browser token, keyed by the token's SHA-256 (the token
itself is never stored): user, role, how they logged in, start, last activity, and when and why it
ended. ``login_failures``: the back-off counters of :class:`medmm.app.auth.Throttle` ("user:NAME",
"client:ADDRESS"). ``meta.session_key``: the random key the server signs the tokens it issues with
(a cookie value the server did not issue is never accepted). These tables are state, not history:
they are updated in place; what happened is in the hash-chained access log.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from dataclasses import dataclass

SCHEMA = """
CREATE TABLE app_sessions (
    token_hash TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    role TEXT NOT NULL,
    method TEXT NOT NULL,
    started REAL NOT NULL,
    last_seen REAL NOT NULL,
    ended REAL,
    end_reason TEXT
);
CREATE TABLE login_failures (
    key TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    last REAL NOT NULL
);
"""


@dataclass(frozen=True)
class StoredLogin:
    user: str
    role: str
    started: float
    last_seen: float
    method: str = "password"


def session_key(conn: sqlite3.Connection) -> bytes:
    """The store's token-signing key (created on first use)."""
    row = conn.execute("SELECT value FROM meta WHERE key='session_key'").fetchone()
    if row is None:
        conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('session_key', ?)", (secrets.token_hex(32),))
        row = conn.execute("SELECT value FROM meta WHERE key='session_key'").fetchone()
    return bytes.fromhex(row[0])


def start(conn: sqlite3.Connection, token_hash: str, user: str, role: str, method: str, now: float | None = None) -> None:
    now = time.time() if now is None else now
    conn.execute("INSERT OR REPLACE INTO app_sessions(token_hash, user, role, method, started, last_seen) "
                 "VALUES (?, ?, ?, ?, ?, ?)", (token_hash, user, role, method, now, now))


def get(conn: sqlite3.Connection, token_hash: str) -> StoredLogin | None:
    row = conn.execute("SELECT user, role, started, last_seen, method FROM app_sessions WHERE token_hash=? AND "
                       "ended IS NULL", (token_hash,)).fetchone()
    return StoredLogin(*row) if row else None


def touch(conn: sqlite3.Connection, token_hash: str, now: float | None = None) -> None:
    conn.execute("UPDATE app_sessions SET last_seen=? WHERE token_hash=? AND ended IS NULL",
                 (time.time() if now is None else now, token_hash))


def end(conn: sqlite3.Connection, token_hash: str, reason: str, now: float | None = None) -> bool:
    cur = conn.execute("UPDATE app_sessions SET ended=?, end_reason=? WHERE token_hash=? AND ended IS NULL",
                       (time.time() if now is None else now, reason, token_hash))
    return cur.rowcount > 0


def end_user(conn: sqlite3.Connection, user: str, reason: str, now: float | None = None) -> int:
    cur = conn.execute("UPDATE app_sessions SET ended=?, end_reason=? WHERE user=? AND ended IS NULL",
                       (time.time() if now is None else now, reason, user))
    return cur.rowcount


def prune(conn: sqlite3.Connection, older_than_days: float = 90.0, now: float | None = None) -> int:
    """Forget session rows that ended (or went idle) long ago (the access log keeps the history)."""
    cutoff = (time.time() if now is None else now) - older_than_days * 86400
    return conn.execute("DELETE FROM app_sessions WHERE last_seen < ?", (cutoff,)).rowcount


def failures(conn: sqlite3.Connection, keys: list[str]) -> dict[str, tuple[int, float]]:
    if not keys:
        return {}
    rows = conn.execute(f"SELECT key, count, last FROM login_failures WHERE key IN ({', '.join('?' * len(keys))})",
                        keys).fetchall()
    return {k: (int(c), float(t)) for k, c, t in rows}


def add_failure(conn: sqlite3.Connection, keys: list[str], now: float) -> None:
    conn.executemany("INSERT INTO login_failures(key, count, last) VALUES (?, 1, ?) "
                     "ON CONFLICT(key) DO UPDATE SET count = count + 1, last = excluded.last", [(k, now) for k in keys])


def clear_failures(conn: sqlite3.Connection, keys: list[str]) -> int:
    return conn.executemany("DELETE FROM login_failures WHERE key = ?", [(k,) for k in keys]).rowcount


def forget_failures(conn: sqlite3.Connection, keys: list[str]) -> None:
    clear_failures(conn, keys)
