"""Issue 20, part B: sessions that hold, who opened which study when, one chain over everything.

Each finding's test first reproduces the attack as the second review did it (N1, N2, N5-N8, N11,
N14, N15), against the middleware in front of the app (driven as ASGI, no server needed), the
login code, the store and the CLI. The over-the-wire session-fixation test is
``tests/test_app_security.py::test_planted_cookie_never_becomes_the_victims_session``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import stat
import subprocess
import sys
import threading
import time

import pytest

from bench.store_load import FakeFlag, FakeResult
from medmm.app import auth, sessions
from medmm.app.auth import AppConfig, Throttle, add_user
from medmm.app.server import SecurityMiddleware, TrustedProxies
from medmm.audit import access_log, chain
from medmm.audit.store import Store, StoreError, StudyRecord
from medmm.errors import ConfigError
from medmm.runs import RunConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PASSWORD = "correct-horse-battery-staple"
REPORT = "FINDINGS: Small left pleural effusion.\n\nIMPRESSION: Small right pleural effusion."


def _filled(path: str, n: int = 3) -> Store:
    s = Store(path)
    run_id, key = s.start_run(RunConfig.build("audit", checker="rules", threshold=0.5))
    for i in range(n):
        s.record_result(run_id, key, StudyRecord(f"src-{i}", None, {"modality": "CT"}, REPORT),
                        FakeResult(True, 0.9, (FakeFlag("laterality", 52, 57, "right"),)))
    s.record_failure(run_id, key, StudyRecord("src-bad", None, None, None), "read", "unreadable")
    s.finish_run(run_id)
    s.add_review("dr_a", "true_error", flag_id=1)
    return s


# ---------------------------------------------------------------- the middleware, driven as ASGI
class _Downstream:
    """Streamlit's place: records the scope it was handed."""

    def __init__(self) -> None:
        self.scopes: list[dict] = []

    async def __call__(self, scope, receive, send):
        self.scopes.append(scope)
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"page"})


def _call(mw: SecurityMiddleware, path: str = "/", headers: list[tuple[str, str]] = (), peer: str = "127.0.0.1",
          kind: str = "http", query: str = "") -> list[dict]:
    scope = {"type": kind, "path": path, "query_string": query.encode(), "scheme": "http" if kind == "http" else "ws",
             "client": (peer, 5000), "headers": [(k.lower().encode(), v.encode()) for k, v in headers]}
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        sent.append(message)

    asyncio.run(mw(scope, receive, send))
    return sent


def _set_cookies(sent: list[dict]) -> list[str]:
    start = next(m for m in sent if m["type"] == "http.response.start")
    return [v.decode() for k, v in start["headers"] if k == b"set-cookie"]


def _status(sent: list[dict]) -> int:
    return next(m for m in sent if m["type"] == "http.response.start")["status"]


def _seen_cookie(down: _Downstream) -> str:
    return dict((k.decode(), v.decode()) for k, v in down.scopes[-1]["headers"]).get("cookie", "")


def test_n1_unissued_or_planted_tokens_are_never_a_login(tmp_path):
    """N1: the middleware accepted any well-formed cookie value and the login adopted it."""
    reg = sessions.Registry()
    down = _Downstream()
    mw = SecurityMiddleware(down, registry=reg)
    planted = "A" * 64  # well-formed, never issued: it used to be passed on to the app, which bound the login to it
    sent = _call(mw, headers=[("Cookie", f"medmm_session={planted}")])
    assert planted not in _seen_cookie(down)  # the app never sees it
    issued = _set_cookies(sent)[0].split(";")[0].split("=", 1)[1]
    assert issued != planted and reg.valid(issued) and not reg.valid(planted)
    # a token the server issued (to an attacker) and planted in the victim's browser: the login rotates it
    old_hash = sessions.token_hash(issued)
    nonce = reg.begin_rotation(old_hash, "dr_victim", "reviewer")
    assert reg.complete_rotation(nonce, sessions.token_hash(reg.issue())) is None  # another browser: refused, spent
    nonce = reg.begin_rotation(old_hash, "dr_victim", "reviewer")
    sent = _call(mw, "/_medmm/login", [("Cookie", f"medmm_session={issued}")], query=f"r={nonce}")
    assert _status(sent) == 303
    new = _set_cookies(sent)[0].split(";")[0].split("=", 1)[1]
    assert new != issued and reg.login(sessions.token_hash(new)).user == "dr_victim"
    assert reg.login(old_hash) is None  # the planted token is not logged in
    assert _status(_call(mw, "/media/x.png", [("Cookie", f"medmm_session={issued}")])) == 403
    assert _status(_call(mw, "/media/x.png", [("Cookie", f"medmm_session={new}")])) == 200
    # the nonce was spent
    assert _status(_call(mw, "/_medmm/login", [("Cookie", f"medmm_session={issued}")], query=f"r={nonce}")) == 303
    assert not _set_cookies(_call(mw, "/_medmm/login", [("Cookie", f"medmm_session={issued}")], query=f"r={nonce}"))


def test_n1_only_the_host_cookie_behind_tls_and_only_from_a_trusted_proxy():
    reg = sessions.Registry()
    token = reg.issue()
    down = _Downstream()
    # X-Forwarded-Proto from a peer that is not a trusted proxy: ignored (it used to be believed from anyone)
    sent = _call(SecurityMiddleware(down, registry=reg), headers=[("X-Forwarded-Proto", "https")])
    assert _set_cookies(sent)[0].startswith("medmm_session=") and "x-forwarded-proto" not in str(down.scopes[-1])
    mw = SecurityMiddleware(down, registry=reg, trusted_proxies=("127.0.0.1",))
    # behind TLS the plain cookie (plantable over http or from a sibling subdomain) is not accepted
    sent = _call(mw, headers=[("X-Forwarded-Proto", "https"), ("Cookie", f"medmm_session={token}")])
    assert _set_cookies(sent)[0].startswith("__Host-medmm_session=") and "Secure" in _set_cookies(sent)[0]
    assert token not in _seen_cookie(down)
    sent = _call(mw, headers=[("X-Forwarded-Proto", "https"), ("Cookie", f"__Host-medmm_session={token}")])
    assert not _set_cookies(sent) and f"__Host-medmm_session={token}" in _seen_cookie(down)
    assert down.scopes[-1]["scheme"] == "https"


def test_n2_repeated_websocket_protocol_header_is_refused():
    """N2: Streamlit reads the first Sec-WebSocket-Protocol header, the guard read the last: an
    attacker put the victim's session ID in the first and a harmless value in the second."""
    reg = sessions.Registry()
    victim = reg.issue()
    reg.bind("victim-sid", sessions.token_hash(victim), "dr_victim", "reviewer")
    down = _Downstream()
    mw = SecurityMiddleware(down, registry=reg)
    attacker = reg.issue()
    sent = _call(mw, "/_stcore/stream", [("Sec-WebSocket-Protocol", "streamlit, xsrf, victim-sid"),
                                         ("Sec-WebSocket-Protocol", "streamlit"),
                                         ("Cookie", f"medmm_session={attacker}")], kind="websocket")
    assert sent == [{"type": "websocket.close", "code": 1008}] and not down.scopes
    # one header naming the victim's session from another browser: refused as before
    sent = _call(mw, "/_stcore/stream", [("Sec-WebSocket-Protocol", "streamlit, xsrf, victim-sid"),
                                         ("Cookie", f"medmm_session={attacker}")], kind="websocket")
    assert sent[0]["code"] == 1008 and not down.scopes
    # the victim's own browser re-attaches
    _call(mw, "/_stcore/stream", [("Sec-WebSocket-Protocol", "streamlit, xsrf, victim-sid"),
                                  ("Cookie", f"medmm_session={victim}")], kind="websocket")
    assert len(down.scopes) == 1


def test_n7_client_address_only_through_trusted_proxies():
    """N7: nginx passed on the client's own X-Forwarded-For and the server believed it from 127.0.0.1,
    so the throttle's client key was whatever the attacker wrote."""
    reg = sessions.Registry()
    down = _Downstream()
    # default: no trusted proxy; the forwarding headers are removed and the peer is the client
    _call(SecurityMiddleware(down, registry=reg), headers=[("X-Forwarded-For", "6.6.6.6")], peer="127.0.0.1")
    assert down.scopes[-1]["client"][0] == "127.0.0.1"
    assert all(k != b"x-forwarded-for" for k, _ in down.scopes[-1]["headers"])
    # a trusted proxy: the first untrusted hop from the right (what the client wrote in front is ignored)
    mw = SecurityMiddleware(down, registry=reg, trusted_proxies=("127.0.0.1", "10.0.0.0/24"))
    _call(mw, headers=[("X-Forwarded-For", "6.6.6.6, 192.0.2.7")], peer="127.0.0.1")
    assert down.scopes[-1]["client"][0] == "192.0.2.7"
    _call(mw, headers=[("X-Forwarded-For", "6.6.6.6, 192.0.2.7, 10.0.0.5")], peer="127.0.0.1")
    assert down.scopes[-1]["client"][0] == "192.0.2.7"
    # an untrusted peer cannot choose its address either
    _call(mw, headers=[("X-Forwarded-For", "192.0.2.99")], peer="192.0.2.50")
    assert down.scopes[-1]["client"][0] == "192.0.2.50"
    assert "10.0.0.9" in TrustedProxies(("10.0.0.0/24",)) and "10.0.1.9" not in TrustedProxies(("10.0.0.0/24",))
    # uvicorn's own proxy handling is switched off by the server (the list above is the only one)
    src = open(os.path.join(ROOT, "medmm", "app", "server.py"), encoding="utf-8").read()
    assert 'os.environ["FORWARDED_ALLOW_IPS"] = ""' in src


def test_trusted_header_sso_only_from_trusted_proxies(tmp_path):
    users = str(tmp_path / "users.yaml")
    add_user(users, "alice", "reviewer", None)  # sign-on only
    add_user(users, "bob", "admin", PASSWORD)
    db = str(tmp_path / "a.sqlite")
    _filled(db).close()
    reg = sessions.Registry(db)
    down = _Downstream()
    mw = SecurityMiddleware(down, registry=reg, trusted_proxies=("127.0.0.1",), sso_header="X-Forwarded-User",
                            users_file=users)
    # from an untrusted address the header is dropped: nobody is logged in, the app never sees it
    sent = _call(mw, headers=[("X-Forwarded-User", "bob")], peer="192.0.2.66")
    token = _set_cookies(sent)[0].split(";")[0].split("=", 1)[1]
    assert reg.login(sessions.token_hash(token)) is None
    assert all(k != b"x-forwarded-user" for k, _ in down.scopes[-1]["headers"])
    # from the proxy: a new token, logged in as the proxy's user
    sent = _call(mw, headers=[("X-Forwarded-User", "alice"), ("X-Forwarded-For", "192.0.2.8")])
    token = _set_cookies(sent)[0].split(";")[0].split("=", 1)[1]
    login = reg.login(sessions.token_hash(token))
    assert login.user == "alice" and login.role == "reviewer" and login.method == "sso"
    # the same browser, now another user at the proxy: a new token; the old login ends
    sent = _call(mw, headers=[("X-Forwarded-User", "bob"), ("Cookie", f"medmm_session={token}")])
    assert reg.login(sessions.token_hash(token)) is None
    # a user the users file does not know: refused
    assert _status(_call(mw, headers=[("X-Forwarded-User", "mallory")])) == 403
    # a repeated sign-on header is refused
    assert _status(_call(mw, headers=[("X-Forwarded-User", "alice"), ("X-Forwarded-User", "bob")])) == 400
    # a sign-on-only user cannot log in with a password
    assert auth.authenticate(auth.load_users(users), "alice", "") is None
    with Store(db) as s:
        events = [(e["event"], e["user"], e["client"]) for e in access_log.query(s.conn, events=["login", "login_failed"])]
    assert ("login", "alice", "192.0.2.8") in events and ("login", "bob", "127.0.0.1") in events
    assert ("login_failed", "-", "127.0.0.1") in events
    # safe by default: sso_header needs trusted proxies
    cfg = tmp_path / "app.yaml"
    cfg.write_text("sso_header: X-Forwarded-User\n")
    with pytest.raises(ConfigError, match="trusted_proxies"):
        AppConfig.load(str(cfg))
    cfg.write_text("sso_header: X-Auth-Request-User\ntrusted_proxies: [127.0.0.1, 10.0.0.0/24]\n")
    assert AppConfig.load(str(cfg)).trusted_proxies == ("127.0.0.1/32", "10.0.0.0/24")


def test_sessions_and_backoff_survive_a_restart(tmp_path):
    db = str(tmp_path / "a.sqlite")
    _filled(db).close()
    before = sessions.Registry(db)
    token = before.issue()
    before.start_login(sessions.token_hash(token), "dr_a", "admin")
    for _ in range(8):
        before.throttle.failure(["user:dr_b"])
    after = sessions.Registry(db)  # the server restarted
    assert after.valid(token) and after.login(sessions.token_hash(token)).user == "dr_a"
    assert after.throttle.wait(["user:dr_b"]) > 0
    after.revoke(sessions.token_hash(token))
    assert sessions.Registry(db).login(sessions.token_hash(token)) is None
    row = sqlite3.connect(db).execute("SELECT token_hash FROM app_sessions").fetchone()
    assert row[0] == sessions.token_hash(token) and token not in str(row)  # only the hash is stored


# ---------------------------------------------------------------- N8, N15: login back-off
def test_n8_parallel_login_attempts_are_serialized_per_user(tmp_path, monkeypatch):
    """N8: 20 wrong passwords sent in parallel were all checked (each passed the back-off check
    before any failure was recorded)."""
    f = str(tmp_path / "u.yaml")
    add_user(f, "dr_p", "reviewer", PASSWORD)
    checked = []

    def slow_wrong(users, name, password):
        checked.append(name)
        time.sleep(0.05)  # the hash takes time: that is the window the attack used
        return None

    monkeypatch.setattr(auth, "authenticate", slow_wrong)
    th = Throttle(free_user=5, free_client=1000)
    results = []
    threads = [threading.Thread(target=lambda: results.append(auth.login(f, "dr_p", "wrong-password-1", f"10.0.0.{i}",
                                                                        th))) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 20 and not any(r.ok for r in results)
    assert len(checked) <= 6, f"{len(checked)} of 20 parallel attempts were checked"
    assert sum(r.wait_seconds > 0 for r in results) >= 14


def test_n15_admin_unlock(tmp_path):
    db = str(tmp_path / "a.sqlite")
    _filled(db).close()
    reg = sessions.Registry(db)
    for _ in range(30):
        reg.throttle.failure(["user:dr_locked", "client:10.0.0.9"])
    assert reg.throttle.wait(["user:dr_locked"]) == pytest.approx(900, abs=2)  # locked out (by design)
    out = subprocess.run([sys.executable, "-m", "medmm.cli", "users", "unlock", "dr_locked", "--db", db, "--client",
                          "10.0.0.9"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert sessions.Registry(db).throttle.wait(["user:dr_locked", "client:10.0.0.9"]) == 0
    with Store(db) as s:
        ev = access_log.query(s.conn, events=["unlock"])
    assert ev and ev[0]["detail"]["user"] == "dr_locked" and ev[0]["user"].startswith("cli:")


# ---------------------------------------------------------------- N5, N6: the store
def test_n5_flags_results_runs_cannot_be_edited_undetected(tmp_path):
    """N5: with the triggers dropped, flags, results and runs could be rewritten and verify said ok."""
    db = str(tmp_path / "a.sqlite")
    _filled(db).close()
    c = sqlite3.connect(db, isolation_level=None)
    # without medmm's SQL functions a plain client cannot even write a chained table
    with pytest.raises(sqlite3.OperationalError, match="medmm_digest"):
        c.execute("INSERT INTO failures(run_id, stage, reason, at) VALUES (1, 'x', 'y', 0)")
    for (name,) in c.execute("SELECT name FROM sqlite_master WHERE type='trigger'").fetchall():
        c.execute(f"DROP TRIGGER {name}")
    c.execute("UPDATE flags SET confidence = 0.01 WHERE id = 2")
    c.execute("UPDATE results SET has_error = 0 WHERE rowid = 1")
    c.execute("UPDATE runs SET config = '{}'")
    c.execute("DELETE FROM flags WHERE id = 3")
    c.execute("INSERT INTO failures(run_id, stage, reason, at) VALUES (1, 'x', 'forged', 0)")
    c.close()
    with Store(db, check_triggers=False) as s:
        s.restore_triggers()
        report = s.verify()
    text = "\n".join(report.chain_problems)
    assert not report.ok
    for expected in ("flag 2: differs", "result ", "run 1: differs", "flag 3: chained but no longer",
                     "failure 2: in the store without a chain entry"):
        assert expected in text, text
    out = subprocess.run([sys.executable, "-m", "medmm.cli", "store", "verify", "--db", db], capture_output=True,
                         text=True, cwd=ROOT)
    assert out.returncode == 1 and "BROKEN: flag 2: differs" in out.stdout


def test_chain_holds_through_medmm_writes_and_a_rewritten_entry_is_found(tmp_path):
    db = str(tmp_path / "a.sqlite")
    s = _filled(db)
    s.record_access("view", "dr_a", study_key="S1", client="10.0.0.1")
    r = s.verify()
    kinds = dict(s.conn.execute("SELECT kind, COUNT(*) FROM chain GROUP BY kind"))
    n_studies = s.conn.execute("SELECT COUNT(*) FROM studies").fetchone()[0]
    n_reports = s.conn.execute("SELECT COUNT(*) FROM reports").fetchone()[0]
    # run, results, flags, failure, finish, review, access; and (v8) every study and report
    assert r.ok and r.chain_entries == 1 + 3 + 3 + 1 + 1 + 1 + 1 + 1 + n_studies + n_reports
    assert (kinds["study"], kinds["report"]) == (n_studies, n_reports) and n_studies >= 3
    s.close()
    c = sqlite3.connect(db, isolation_level=None)
    chain.register(c)
    for name in ("chain_append_only_update",):
        c.execute(f"DROP TRIGGER {name}")
    c.execute("UPDATE chain SET digest = ? WHERE seq = 3", ("0" * 64,))
    c.close()
    with Store(db, check_triggers=False) as s:
        assert any("chain entry 3" in p for p in s.verify().chain_problems)


def test_n6_a_foreign_trigger_that_swallows_reviews_is_refused(tmp_path):
    """N6: an extra BEFORE INSERT trigger with RAISE(IGNORE) made every saved review vanish while the
    reviewer saw no error."""
    db = str(tmp_path / "a.sqlite")
    s = _filled(db)
    c = sqlite3.connect(db, isolation_level=None)
    c.execute("CREATE TRIGGER zz_swallow BEFORE INSERT ON reviews BEGIN SELECT RAISE(IGNORE); END")
    c.execute("CREATE VIEW zz_view AS SELECT * FROM reviews")
    c.close()
    # a store already open when the trigger appeared: the review is not silently lost
    with pytest.raises(StoreError, match="not saved"):
        s.add_review("dr_b", "false_positive", flag_id=2)
    s.close()
    with pytest.raises(StoreError, match="zz_swallow was not created by medmm"):
        Store(db)
    with Store(db, check_triggers=False) as s:
        report = s.verify()
        assert not report.ok and any("zz_swallow" in p for p in report.trigger_problems)
        assert any("view zz_view" in w for w in report.warnings)
        assert "zz_swallow" in s.restore_triggers()
    with Store(db) as s:
        s.add_review("dr_b", "false_positive", flag_id=2)
        assert s.verify().ok


# ---------------------------------------------------------------- item 4: the access log
def test_access_log_query_export_and_filters(tmp_path):
    db = str(tmp_path / "a.sqlite")
    s = _filled(db)
    t0 = time.time()
    s.record_access("login", "dr_a", client="10.0.0.1", detail={"method": "password"})
    s.record_access("view", "dr_a", study_key="S1", client="10.0.0.1")
    s.record_access("view", "dr_b", study_key="S2", client="10.0.0.2")
    s.record_access("export", "dr_b", detail={"rows": 3, "redacted": True})
    with pytest.raises(Exception, match="append-only"):
        s.conn.execute("UPDATE access_log SET user='someone_else'")
    with pytest.raises(Exception, match="append-only"):
        s.conn.execute("DELETE FROM access_log")
    rows = access_log.query(s.conn, user="dr_a")
    assert [r["event"] for r in rows] == ["decision", "login", "view"]  # the review is a decision event
    assert [r["user"] for r in access_log.query(s.conn, events=["view"])] == ["dr_a", "dr_b"]
    assert access_log.query(s.conn, since=t0 + 3600) == []
    s.close()
    out = str(tmp_path / "log.jsonl")
    res = subprocess.run([sys.executable, "-m", "medmm.cli", "store", "access-log", "--db", db, "--out", out, "--user",
                          "dr_b", "--since", time.strftime("%Y-%m-%d", time.gmtime(t0))], capture_output=True, text=True,
                         cwd=ROOT)
    assert res.returncode == 0, res.stderr
    got = [json.loads(line) for line in open(out, encoding="utf-8")]
    assert [g["event"] for g in got] == ["view", "export"] and stat.S_IMODE(os.stat(out).st_mode) == 0o600
    csv_out = str(tmp_path / "log.csv")
    res = subprocess.run([sys.executable, "-m", "medmm.cli", "store", "access-log", "--db", db, "--out", csv_out,
                          "--event", "view"], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0 and open(csv_out, encoding="utf-8").read().count("\n") == 3
    # medmm export is an access-log event too (the OS user, what was exported)
    res = subprocess.run([sys.executable, "-m", "medmm.cli", "export", "--db", db, "--out", str(tmp_path / "f.csv"),
                          "--redact"], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    with Store(db) as s:
        last = access_log.query(s.conn, events=["export"])[-1]
    assert last["user"].startswith("cli:") and last["detail"]["redacted"] is True and last["detail"]["rows"] == 3


def test_reading_the_access_log_out_is_itself_logged(tmp_path):
    """Verifier's probe: `medmm store access-log` (staff activity, study keys) left no trace in the log."""
    db = str(tmp_path / "a.sqlite")
    _filled(db).close()
    res = subprocess.run([sys.executable, "-m", "medmm.cli", "store", "access-log", "--db", db, "--user", "dr_a"],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    with Store(db) as s:
        last = access_log.query(s.conn, events=["export"])[-1]
    assert last["user"].startswith("cli:") and last["detail"]["what"] == "access_log"
    assert last["detail"]["filters"] == {"user": "dr_a"} and last["detail"]["to"] == "stdout"


def test_access_log_export_never_writes_through_a_planted_temporary_name(tmp_path):
    """Verifier's probe: the export wrote to the predictable ``OUT.<pid>.tmp`` (no O_EXCL, symlinks
    followed), so a link planted there in a shared folder received the log (or clobbered its target)."""
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    out = tmp_path / "log.jsonl"
    os.symlink(victim, f"{out}.{os.getpid()}.tmp")
    assert access_log.write([{"at": 0.0, "user": "dr_a", "event": "view", "study_key": "S1", "client": None,
                              "detail": {}, "source": "access_log", "id": 1}], str(out)) == 1
    assert victim.read_text() == "keep me"
    assert json.loads(out.read_text())["user"] == "dr_a" and stat.S_IMODE(os.stat(out).st_mode) == 0o600


# ---------------------------------------------------------------- N11, N14
def test_n11_bearer_key_never_follows_a_redirect():
    """N11: a 302 from the model server sent the request, Authorization header included, to the host
    it named."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from medmm.models.base import ModelError
    from medmm.models.http import HTTPVLM

    seen: list = []

    class Other(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):  # noqa: N802
            seen.append(self.headers.get("Authorization"))
            self.send_response(200)
            self.end_headers()

        do_POST = do_GET  # noqa: N815

    other = ThreadingHTTPServer(("127.0.0.1", 0), Other)

    class Redirecting(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(302)
            self.send_header("Location", f"http://localhost:{other.server_address[1]}/steal")
            self.end_headers()

    first = ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    for srv in (other, first):
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        vlm = HTTPVLM(f"http://127.0.0.1:{first.server_address[1]}", api_key="sk-secret", retries=0)
        with pytest.raises(ModelError, match="redirect to another server"):
            vlm._post({"messages": []})
        assert seen == []  # nothing reached the other host, the key least of all
    finally:
        for srv in (other, first):
            srv.shutdown()
            srv.server_close()


def test_n14_exports_are_written_0600(tmp_path):
    from medmm.audit.runner import export

    db = str(tmp_path / "a.sqlite")
    _filled(db).close()
    for name in ("f.csv", "f.jsonl", "f.parquet"):
        out = tmp_path / name
        out.write_text("old")
        os.chmod(out, 0o644)  # an earlier, world-readable export is overwritten
        export(db, str(out))
        assert stat.S_IMODE(os.stat(out).st_mode) == 0o600, name
    old = os.umask(0o022)
    try:
        export(db, str(tmp_path / "new.csv"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "new.csv").st_mode) == 0o600


def test_media_only_for_a_live_login(tmp_path):
    """/media/ (images, downloads) answers a login only while the app would: the user still in the users
    file with the same role, not idle past the timeout, not older than the absolute lifetime."""
    users = str(tmp_path / "users.yaml")
    add_user(users, "dr_m", "reviewer", None)
    reg = sessions.Registry()
    token = reg.issue()
    h = sessions.token_hash(token)
    mw = SecurityMiddleware(_Downstream(), registry=reg, users_file=users, idle_seconds=60, max_seconds=3600)
    cookie = [("Cookie", f"medmm_session={token}")]
    reg.start_login(h, "dr_m", "reviewer")
    assert _status(_call(mw, "/media/x.png", cookie)) == 200
    reg.touch(h, time.time() - 120)  # idle for two minutes
    assert _status(_call(mw, "/media/x.png", cookie)) == 403
    reg.start_login(h, "dr_m", "reviewer", now=time.time() - 7200)  # logged in two hours ago
    reg.touch(h)
    assert _status(_call(mw, "/media/x.png", cookie)) == 403
    reg.start_login(h, "dr_m", "reviewer")
    auth.remove_user(users, "dr_m")
    assert _status(_call(mw, "/media/x.png", cookie)) == 403


def test_admin_ends_a_users_logins(tmp_path):
    db = str(tmp_path / "a.sqlite")
    _filled(db).close()
    reg = sessions.Registry(db)
    tokens = [reg.issue() for _ in range(2)]
    for t in tokens:
        reg.start_login(sessions.token_hash(t), "dr_lost_badge", "admin")
    other = reg.issue()
    reg.start_login(sessions.token_hash(other), "dr_other", "reviewer")
    out = subprocess.run([sys.executable, "-m", "medmm.cli", "users", "logout", "dr_lost_badge", "--db", db],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and "2 login(s) ended" in out.stderr, out.stderr
    after = sessions.Registry(db)
    assert all(after.login(sessions.token_hash(t)) is None for t in tokens)
    assert after.login(sessions.token_hash(other)).user == "dr_other"
    with Store(db) as s:
        ev = access_log.query(s.conn, events=["session_ended"])
    assert ev[-1]["user"] == "dr_lost_badge" and ev[-1]["detail"]["reason"] == "administrator"


def test_n14_an_export_replaces_a_planted_symlink_and_never_writes_through_it(tmp_path):
    """A symlink planted at the export's name is replaced by the export; the file it pointed at is untouched
    (verifier's round: the export used to open the link, overwrite the victim and chmod it 0600)."""
    from medmm.audit.runner import export

    db = str(tmp_path / "a.sqlite")
    _filled(db).close()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    os.chmod(victim, 0o644)
    for name in ("link.csv", "link.jsonl", "link.parquet"):
        out = tmp_path / name
        os.symlink(victim, out)
        export(db, str(out))
        assert not os.path.islink(out) and stat.S_IMODE(os.stat(out).st_mode) == 0o600, name
        assert victim.read_text() == "precious" and stat.S_IMODE(os.stat(victim).st_mode) == 0o644
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".medmm-export-")]


def _edit_outside_medmm(db: str, table: str, sql: str) -> None:
    """What someone with write access to the file does: lift the append-only trigger, edit, put it back."""
    con = sqlite3.connect(db)
    trig = con.execute("SELECT sql FROM sqlite_master WHERE name=?", (f"{table}_append_only_update",)).fetchone()[0]
    con.execute(f"DROP TRIGGER {table}_append_only_update")
    con.execute(sql)
    con.execute(trig)
    con.commit()
    con.close()


@pytest.mark.parametrize("table, sql", [
    ("results", "UPDATE results SET n_flags = 0, flag_types = NULL, top_confidence = NULL"),
    ("results", "UPDATE results SET sort_key = 'zzz'"),
    ("reports", "UPDATE reports SET text = 'No acute findings.'"),
    ("studies", "UPDATE studies SET images = '[\"/etc/shadow\"]'"),
    ("studies", "UPDATE studies SET accession_number = 'OTHER'"),
])
def test_n5_verify_names_edits_to_worklist_columns_reports_and_studies(tmp_path, table, sql):
    """The verifier's round: the chain covered runs, results' own fields, flags, failures, reviews and the access
    log, but not a result's worklist columns (hide a flagged study), the report text or a study's paths."""
    db = str(tmp_path / "a.sqlite")
    _filled(db).close()
    with Store(db) as store:
        assert store.verify().ok
    _edit_outside_medmm(db, table, sql)
    with Store(db) as store:
        report = store.verify()
    assert not report.ok and report.chain_problems


def test_n5_a_v7_store_is_chained_over_studies_and_reports_when_it_migrates(tmp_path, monkeypatch):
    """Studies and reports stored before v8 get chain entries at the migration (verify is clean after it), and an
    edit made after the migration is named."""
    from medmm.audit import store as store_mod

    db = str(tmp_path / "a.sqlite")
    with monkeypatch.context() as m:  # medmm as it was at v7: no study/report chain triggers
        m.setattr(store_mod, "SCHEMA_VERSION", 7)
        m.setattr(store_mod, "TRIGGERS", {k: v for k, v in store_mod.TRIGGERS.items() if k not in chain.V8_TRIGGERS}
                  | {"chain_flags": chain.TRIGGERS["chain_flags"]})  # and the flag chain trigger before v9
        _filled(db).close()
        con = sqlite3.connect(db)
        assert con.execute("SELECT COUNT(*) FROM chain WHERE kind IN ('study', 'report')").fetchone()[0] == 0
        con.close()
    with Store(db) as store:
        rep = store.verify()
        kinds = dict(store.conn.execute("SELECT kind, COUNT(*) FROM chain GROUP BY kind"))
        n_studies = store.conn.execute("SELECT COUNT(*) FROM studies").fetchone()[0]
    assert rep.ok, rep
    assert kinds["study"] == n_studies >= 3 and kinds["report"] >= 3
    _edit_outside_medmm(db, "reports", "UPDATE reports SET text = 'x'")
    with Store(db) as store:
        assert not store.verify().ok
