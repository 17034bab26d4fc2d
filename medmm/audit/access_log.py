"""The access log: who logged in (or failed to), who opened which study when, who exported what.

Rows live in the review store's ``access_log`` table (schema v5), append-only (triggers refuse
UPDATE, DELETE and REPLACE) and hash-chained with everything else the store records
(:mod:`medmm.audit.chain`). Decisions are the store's reviews: :func:`query` returns them as
``decision`` events beside the logged ones, so one export answers "who did what to which study".

What a row holds: the time (UTC seconds), the staff user name (a failed login's name only when it
is a known user: a password typed into the name field is never kept), the event, the store-issued
study key (never a path, a patient name or report text), the client address as the server saw it
(through the configured trusted proxies only) and a small JSON detail (e.g. ``{"method":
"password"}``, ``{"rows": 12, "redacted": true}``).
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterable
from typing import Any

from medmm.errors import InputError
from medmm.runs import write_atomic

EVENTS = ("login", "login_failed", "login_throttled", "logout", "session_ended", "view", "export", "unlock",
          "decision")
LOGGED = tuple(e for e in EVENTS if e != "decision")  # decisions are the reviews table's rows
COLUMNS = ("id", "at", "user", "event", "study_key", "client", "detail")

SCHEMA = f"""
CREATE TABLE access_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    user TEXT NOT NULL,
    event TEXT NOT NULL CHECK (event IN ({", ".join(repr(e) for e in LOGGED)})),
    study_key TEXT,
    client TEXT,
    detail TEXT
);
CREATE INDEX access_log_at ON access_log(at);
"""


def record(conn: Any, event: str, user: str, study_key: str | None = None, client: str | None = None,
           detail: dict[str, Any] | None = None, at: float | None = None) -> int:
    """Append one event (``conn``: a store connection with the chain functions registered; the caller's
    transaction, or autocommit). Returns the row id; raises if a foreign trigger swallowed the row."""
    if event not in LOGGED:
        raise InputError(f"access-log event {event!r}: use one of {', '.join(LOGGED)}")
    cur = conn.execute("INSERT INTO access_log(at, user, event, study_key, client, detail) VALUES (?, ?, ?, ?, ?, ?)",
                       (time.time() if at is None else at, user or "-", event, study_key, client,
                        json.dumps(detail, sort_keys=True, separators=(",", ":")) if detail else None))
    rid = int(cur.lastrowid or 0)
    if cur.rowcount != 1 or not conn.execute("SELECT 1 FROM access_log WHERE id=?", (rid,)).fetchone():
        from medmm.audit.store import StoreError

        raise StoreError("the access-log entry was not written (a trigger medmm did not create swallowed it): run "
                         "`medmm store verify`")
    return rid


def query(conn: Any, user: str | None = None, since: float | None = None, until: float | None = None,
          events: Iterable[str] | None = None, study_key: str | None = None) -> list[dict[str, Any]]:
    """Logged events and review decisions, oldest first, filtered by user, time range, event and study."""
    wanted = set(events) if events else set(EVENTS)
    unknown = wanted - set(EVENTS)
    if unknown:
        raise InputError(f"access-log event(s) {sorted(unknown)}: use {', '.join(EVENTS)}")
    rows: list[dict[str, Any]] = []

    def where(col_user: str, col_at: str, col_study: str) -> tuple[str, list[Any]]:
        conds, params = [], []
        if user is not None:
            conds.append(f"{col_user} = ?")
            params.append(user)
        if since is not None:
            conds.append(f"{col_at} >= ?")
            params.append(since)
        if until is not None:
            conds.append(f"{col_at} < ?")
            params.append(until)
        if study_key is not None:
            conds.append(f"{col_study} = ?")
            params.append(study_key)
        return (" WHERE " + " AND ".join(conds)) if conds else "", params

    logged = sorted(wanted & set(LOGGED))
    if logged:
        w, params = where("user", "at", "study_key")
        w = (w + " AND " if w else " WHERE ") + f"event IN ({', '.join('?' * len(logged))})"
        for r in conn.execute(f"SELECT {', '.join(COLUMNS)} FROM access_log{w} ORDER BY at, id",  # noqa: S608
                              (*params, *logged)):
            d = dict(zip(COLUMNS, r))
            d["detail"] = json.loads(d["detail"]) if d["detail"] else {}
            d["source"] = "access_log"
            rows.append(d)
    if "decision" in wanted:
        w, params = where("reviewer", "at", "study_key")
        for rid, at, reviewer, key, flag_id, decision in conn.execute(
                f"SELECT id, at, reviewer, study_key, flag_id, decision FROM reviews{w} ORDER BY at, id",  # noqa: S608
                params):
            rows.append({"id": rid, "at": at, "user": reviewer, "event": "decision", "study_key": key, "client": None,
                         "detail": {"flag_id": flag_id, "decision": decision}, "source": "reviews"})
    rows.sort(key=lambda d: (d["at"], d["source"], d["id"]))
    return rows


def _utc(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def write(rows: list[dict[str, Any]], out: str) -> int:
    """Write rows as JSONL or CSV (by the name's ending), mode 0600 (the log names staff and studies)."""
    low = out.lower()
    if not low.endswith((".jsonl", ".csv")):
        raise InputError(f"{out}: export the access log to .jsonl or .csv")
    # medmm.runs.write_atomic: a random, exclusively created temporary name beside OUT (mkstemp: O_EXCL, 0600),
    # so a link planted at a predictable name in a shared folder never receives the log
    fh = io.StringIO(newline="")
    if low.endswith(".jsonl"):
        for r in rows:
            fh.write(json.dumps({**r, "time": _utc(r["at"])}, sort_keys=True) + "\n")
    else:
        w = csv.writer(fh)
        w.writerow(["time", "at", "user", "event", "study_key", "client", "detail", "source", "id"])
        for r in rows:
            w.writerow([_utc(r["at"]), f"{r['at']:.3f}", _cell(r["user"]), r["event"], r["study_key"] or "",
                        r["client"] or "", _cell(json.dumps(r["detail"], sort_keys=True)), r["source"], r["id"]])
    write_atomic(out, fh.getvalue(), mode=0o600)
    return len(rows)


def _cell(value: Any) -> str:
    """A CSV cell a spreadsheet does not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.lstrip()[:1] in ("=", "+", "-", "@", "\t") else text


def parse_time(text: str | None) -> float | None:
    """``2026-12-06``, ``2026-12-06T14:30`` or ``2026-12-06T14:30:00`` (UTC) -> seconds; None stays None."""
    if not text:
        return None
    import calendar

    for fmt in ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"):
        try:
            return float(calendar.timegm(time.strptime(text.rstrip("Z"), fmt)))
        except ValueError:
            continue
    raise InputError(f"{text!r}: give a UTC date as YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS]")
