"""Security of the review app (issue 14 findings 1, 5-10): session binding attacked over a real
server's websockets, login throttling and password policy, upload limits, report text rendered as
text, roles per action, logout/revocation/expiry, production settings and security headers."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile

import pytest

from bench.store_load import FakeFlag, FakeResult
from medmm.app import auth, sessions
from medmm.app.auth import AppConfig, Session, Throttle, add_user, load_users, remove_user
from medmm.app.text import inert_html, md_escape
from medmm.app.uploads import UploadLimits, save_upload, sweep_pending
from medmm.audit.store import Store, StudyRecord
from medmm.errors import InputError
from medmm.runs import RunConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP = os.path.join(ROOT, "apps", "report_checker.py")
ADMIN, REVIEWER, PASSWORD = "dr_admin", "dr_rev", "a-long-password"
BEACON = "http://127.0.0.1:9/beacon.png"
REPORT = (f"FINDINGS: Small left pleural effusion. ![tracker]({BEACON}) See [the portal](http://evil.example/x).\n\n"
          "IMPRESSION: Small right pleural effusion.")


@pytest.fixture(autouse=True)
def _restore_main_module():
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A store with two flagged studies whose report quotes Markdown (image + link); an admin and a
    reviewer; an app config. Users are hashed at the cheapest cost the policy allows re-hashing from."""
    d = tmp_path_factory.mktemp("appsec")
    with Store(str(d / "a.sqlite")) as s:
        run_id, key = s.start_run(RunConfig.build("audit", checker="rules", threshold=0.5))
        start = REPORT.index("right")
        quote = REPORT[REPORT.index("![tracker]"):REPORT.index(".\n")]
        for i in range(2):
            flags = (FakeFlag("laterality", start, start + 5, "right", f"Impression says right; findings: {quote}"),)
            s.record_result(run_id, key, StudyRecord(f"src-{i}", None, {"modality": "CT"}, REPORT), FakeResult(True, 0.9,
                                                                                                         flags))
        s.finish_run(run_id)
    add_user(str(d / "users.yaml"), ADMIN, "admin", PASSWORD)
    add_user(str(d / "users.yaml"), REVIEWER, "reviewer", PASSWORD)
    (d / "app.yaml").write_text("db: a.sqlite\nusers_file: users.yaml\nsession_timeout_minutes: 30\n"
                                "trusted_proxies: [127.0.0.1]\n")  # the tests play the TLS proxy from here
    shutil.copy(d / "a.sqlite", d / "pristine.sqlite")
    shutil.copy(d / "users.yaml", d / "users.pristine.yaml")
    return d


# ---------------------------------------------------------------- AppTest helpers
def _app(site, monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest

    db = tmp_path / "copy.sqlite"
    shutil.copy(site / "pristine.sqlite", db)
    users = tmp_path / "users.yaml"
    shutil.copy(site / "users.pristine.yaml", users)
    cfg = tmp_path / "app.yaml"
    cfg.write_text(f"db: {db}\nusers_file: {users}\nsession_timeout_minutes: 30\nsession_max_hours: 12\n")
    monkeypatch.setenv("MEDMM_APP_CONFIG", str(cfg))
    monkeypatch.delenv("MEDMM_APP_DB", raising=False)
    monkeypatch.setattr(auth, "THROTTLE", Throttle())
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at, db, users


def _login(at, user: str, password: str = PASSWORD):
    at.text_input(key="login_user").input(user)
    at.text_input(key="login_password").input(password)
    at.button[0].click().run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def _is_login_form(at) -> bool:
    return [t.label for t in at.text_input] == ["User name", "Password"] and not at.sidebar.radio


def _page(at, name: str):
    at.sidebar.radio(key="page").set_value(name).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def _all_text(at) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [t.value for t in at.text]
    return "\n".join(parts)


# ---------------------------------------------------------------- 1. session binding (in the app)
def test_login_bound_to_the_connection_cookie(site, monkeypatch, tmp_path):
    """A session whose login was bound to another browser's cookie shows the login form (what an
    attacker re-attaching with the session ID alone gets: their connection has another cookie)."""
    at, _, _ = _app(site, monkeypatch, tmp_path)
    _login(at, REVIEWER)
    assert at.sidebar.radio and at.session_state["session"].token_hash == sessions.NO_CLIENT
    at.session_state["session"].token_hash = sessions.token_hash("the-victims-browser-cookie-value")
    at.run()
    assert _is_login_form(at)
    assert "session" not in at.session_state


def test_session_problem_rules():
    cfg = AppConfig(session_timeout_minutes=30, session_max_hours=12)
    reg = sessions.Registry()
    h = sessions.token_hash("t" * 43)
    users = {"u": {"role": "reviewer"}}
    now = 1_000_000.0
    s = Session("u", "reviewer", now, now, h)
    reg.bind("sid", h, "u", "reviewer", now)
    assert sessions.session_problem(s, h, users, cfg, reg, now) is None
    assert "another browser" in sessions.session_problem(s, sessions.token_hash("x" * 43), users, cfg, reg, now)
    assert "changed" in sessions.session_problem(s, h, {}, cfg, reg, now)
    assert "changed" in sessions.session_problem(s, h, {"u": {"role": "admin"}}, cfg, reg, now)
    assert "inactivity" in sessions.session_problem(s, h, users, cfg, reg, now + 31 * 60)
    s.started = now - 13 * 3600
    assert "at most 12" in sessions.session_problem(s, h, users, cfg, reg, now)
    s.started = now
    reg.revoke(h)
    assert sessions.session_problem(s, h, users, cfg, reg, now) is not None


# ---------------------------------------------------------------- 5. throttling, policy, scrypt cost
def test_password_policy_and_cost(tmp_path):
    f = str(tmp_path / "u.yaml")
    for bad, why in (("short-pw", "at least 12"), ("x" * 257, "at most 256"), ("a" * 20, "repeated"),
                     ("Dr_Long_Name1", "user name")):
        with pytest.raises(InputError, match=why):
            add_user(f, "dr_long_name1", "reviewer", bad)
    add_user(f, "dr_long_name1", "reviewer", PASSWORD)
    rec = load_users(f)["dr_long_name1"]
    assert rec["n"] >= 2**17 and rec["r"] == 8
    assert stat.S_IMODE(os.stat(f).st_mode) == 0o600
    assert auth.authenticate(load_users(f), "dr_name", "x" * 10_000) is None  # refused before any hashing


def test_old_hash_is_rehashed_on_login(tmp_path, monkeypatch):
    f = str(tmp_path / "u.yaml")
    monkeypatch.setattr(auth, "N", 2**14)  # a users file written by an older medmm
    add_user(f, "dr_old", "reviewer", PASSWORD)
    assert load_users(f)["dr_old"]["n"] == 2**14
    monkeypatch.setattr(auth, "N", 2**17)
    assert not auth.login(f, "dr_old", "wrong-password-here", "10.0.0.1", Throttle()).ok
    assert load_users(f)["dr_old"]["n"] == 2**14  # a failed login changes nothing
    assert auth.login(f, "dr_old", PASSWORD, "10.0.0.1", Throttle()).role == "reviewer"
    rec = load_users(f)["dr_old"]
    assert rec["n"] == 2**17 and auth.verify_password(PASSWORD, rec)


def test_throttle_per_user_and_per_client(tmp_path, monkeypatch):
    f = str(tmp_path / "u.yaml")
    add_user(f, "dr_t", "reviewer", PASSWORD)
    calls = []
    real = auth.authenticate
    monkeypatch.setattr(auth, "authenticate", lambda *a: calls.append(a[1]) or real(*a))
    th = Throttle(free_user=3, free_client=5, max_wait=900)
    t = 1000.0
    for _ in range(3):
        assert not auth.login(f, "dr_t", "wrong-password-1", "10.0.0.1", th, now=t).ok
    assert len(calls) == 3
    # after 3 failures, the next attempt waits 1 s: refused without hashing, even with the right password
    r = auth.login(f, "dr_t", PASSWORD, "10.0.0.2", th, now=t + 0.5)
    assert not r.ok and r.wait_seconds == pytest.approx(0.5) and len(calls) == 3
    assert not auth.login(f, "dr_t", "wrong-password-1", "10.0.0.1", th, now=t + 1.1).ok
    assert len(calls) == 4
    assert auth.login(f, "dr_t", PASSWORD, "10.0.0.2", th, now=t + 2.0).wait_seconds == pytest.approx(1.1)  # doubled
    assert auth.login(f, "dr_t", PASSWORD, "10.0.0.2", th, now=t + 3.2).ok  # after the back-off
    # the back-off grows to the lock-out cap
    for k in range(20):
        th.failure(["user:dr_x"], now=t)
    assert th.wait(["user:dr_x"], now=t) == pytest.approx(900)
    # per client: many users from one address
    for k in range(5):
        auth.login(f, f"nobody{k}", "wrong-password-1", "10.9.9.9", th, now=t)
    auth.login(f, "nobody9", "wrong-password-1", "10.9.9.9", th, now=t)
    assert auth.login(f, "dr_t", PASSWORD, "10.9.9.9", th, now=t + 0.1).wait_seconds > 0
    assert auth.login(f, "dr_t", PASSWORD, "10.0.0.3", th, now=t + 0.1).ok


def test_app_login_is_throttled(site, monkeypatch, tmp_path):
    """The app's back-off lives in the store: it survives a restart (a new registry on the same file),
    and every failure is in the access log (an unknown name is never kept: it may be a password)."""
    from medmm.audit import access_log

    at, db, _ = _app(site, monkeypatch, tmp_path)
    for _ in range(3):
        _login(at, REVIEWER, "not-the-password")
    for _ in range(5):  # as if five more attempts had failed just now: a back-off of 2**4 s
        sessions.REGISTRY.throttle.failure([f"user:{REVIEWER}"])
    _login(at, REVIEWER)
    assert any("Too many failed logins" in e.value for e in at.error)
    assert _is_login_form(at)
    _login(at, "my-Secret-Password-typed-as-a-name", "x" * 12)
    restarted = sessions.Registry(str(db))
    assert restarted.throttle.wait([f"user:{REVIEWER}"]) > 0  # a restart does not reset the back-off
    with Store(str(db)) as s:
        events = [(e["event"], e["user"]) for e in access_log.query(s.conn)]
    assert events.count(("login_failed", REVIEWER)) == 3 and ("login_throttled", REVIEWER) in events
    assert ("login_failed", "-") in events and "Secret" not in str(events)


# ---------------------------------------------------------------- 6. uploads
def _zip(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_zip_limits(tmp_path):
    root = str(tmp_path / "uploads")
    bomb = _zip({"a.dcm": b"\0" * (64 << 20)})
    assert len(bomb) < 100_000
    with pytest.raises(InputError, match="zip bomb"):
        save_upload(bomb, "series.zip", root)
    with pytest.raises(InputError, match="expands to"):
        save_upload(_zip({f"{i}.dcm": os.urandom(1 << 16) for i in range(20)}, zipfile.ZIP_STORED), "s.zip", root,
                    UploadLimits(max_expanded_bytes=1 << 20))
    with pytest.raises(InputError, match="at most 10"):
        save_upload(_zip({f"{i}.dcm": b"x" for i in range(11)}), "s.zip", root, UploadLimits(max_members=10))
    with pytest.raises(InputError, match="cannot be read"):
        save_upload(b"PK\x03\x04 not really a zip", "s.zip", root)
    assert os.listdir(os.path.join(root, "pending")) == []  # nothing left of refused uploads
    members = {"../../evil.dcm": b"1", "/abs.dcm": b"2", "ok/b.dcm": b"3", "c.dcm": b"4"}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
        link = zipfile.ZipInfo("link.dcm")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        z.writestr(link, "/etc/passwd")
    up = save_upload(buf.getvalue(), "x.zip", root)
    series = up.images[0]
    found = sorted(os.path.relpath(os.path.join(d, f), series) for d, _, fs in os.walk(series) for f in fs)
    assert found == ["c.dcm", "ok/b.dcm"]
    assert not os.path.exists(tmp_path / "evil.dcm") and not os.path.exists("/abs.dcm")
    for d, dirs, fs in os.walk(up.folder):
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
        for f in fs:
            assert stat.S_IMODE(os.stat(os.path.join(d, f)).st_mode) == 0o600
    assert sweep_pending(root, max_age_s=3600) == 0
    assert sweep_pending(root, max_age_s=0, now=time.time() + 10) == 1
    assert os.listdir(os.path.join(root, "pending")) == []


def test_zip_member_lying_about_its_size_is_cut_off(tmp_path):
    data = bytearray(_zip({"a.dcm": b"\0" * (4 << 20)}))
    # rewrite the declared size (local header and central directory) to 1 MiB
    i = data.index(b"PK\x03\x04")
    data[i + 22:i + 26] = (1 << 20).to_bytes(4, "little")
    j = data.index(b"PK\x01\x02")
    data[j + 24:j + 28] = (1 << 20).to_bytes(4, "little")
    with pytest.raises(InputError):
        save_upload(bytes(data), "s.zip", str(tmp_path / "u"))
    assert os.listdir(tmp_path / "u" / "pending") == []


def test_check_now_upload_is_admin_only_and_unsaved_uploads_are_deleted(site, monkeypatch, tmp_path):
    at, db, _ = _app(site, monkeypatch, tmp_path)
    _page(_login(at, REVIEWER), "Check now")
    assert not at.file_uploader  # reviewers cannot upload
    at.button(key="logout").click().run()
    _page(_login(at, ADMIN), "Check now")
    at.file_uploader(key="upload").set_value(("DOE_JANE.png", b"\x89PNG\r\n\x1a\n not really", "image/png"))
    at.text_area(key="paste_report").input("FINDINGS: Left effusion.\n\nIMPRESSION: Right effusion.")
    at.button(key="run_check").click().run()
    assert not at.exception, [e.message for e in at.exception]
    pending = os.path.join(tmp_path, "uploads", "pending")
    kept = [os.path.join(d, f) for d, _, fs in os.walk(pending) for f in fs]
    assert len(kept) == 1 and "DOE_JANE" not in kept[0]  # never the uploaded name
    assert stat.S_IMODE(os.stat(kept[0]).st_mode) == 0o600
    at.button(key="run_check").click().run()  # a new check: the earlier unsaved upload is gone
    assert len([f for _, _, fs in os.walk(pending) for f in fs]) == 1
    at.button(key="logout").click().run()  # logout: so is this one
    assert [f for _, _, fs in os.walk(pending) for f in fs] == []


def test_zip_bomb_through_check_now(site, monkeypatch, tmp_path):
    at, _, _ = _app(site, monkeypatch, tmp_path)
    _page(_login(at, ADMIN), "Check now")
    at.file_uploader(key="upload").set_value(("s.zip", _zip({"a.dcm": b"\0" * (32 << 20)}), "application/zip"))
    at.text_area(key="paste_report").input("FINDINGS: Normal.")
    at.button(key="run_check").click().run()
    assert not at.exception
    assert any("zip bomb" in e.value for e in at.error)
    assert sum(len(fs) for _, _, fs in os.walk(tmp_path / "uploads")) == 0


# ---------------------------------------------------------------- 7. report text is text
def test_report_text_never_becomes_markdown(site, monkeypatch, tmp_path):
    at, db, _ = _app(site, monkeypatch, tmp_path)
    _page(_login(at, REVIEWER), "Study")
    for m in list(at.markdown) + list(at.caption):
        body = m.value
        assert f"]({BEACON})" not in body and "](http://evil.example" not in body, body
    quoted = [t.value for t in at.text]
    assert any(f"![tracker]({BEACON})" in q for q in quoted)  # shown, as plain text
    html = [m.value for m in at.markdown if "medmm-report" in m.value][0]
    assert "&#91;the portal&#93;&#40;http&#58;//evil.example/x&#41;" in html


def test_md_escape_and_inert_html():
    assert md_escape("![a](http://x/y.png) *b* :red[c]") == \
        r"\!\[a\]\(http\://x/y\.png\) \*b\* \:red\[c\]"
    html = '<mark title="t (1)">[x](http://y)</mark> &amp; ![i](z)'
    assert inert_html(html) == ('<mark title="t &#40;1&#41;">&#91;x&#93;&#40;http&#58;//y&#41;</mark> &amp; '
                                "&#33;&#91;i&#93;&#40;z&#41;")


# ---------------------------------------------------------------- 8. roles
def _export_calls(monkeypatch):
    from medmm.audit import runner

    calls = []
    real = runner.export

    def spy(*a, **kw):
        calls.append(kw)
        return real(*a, **kw)

    monkeypatch.setattr(runner, "export", spy)
    return calls


def test_reviewer_exports_redacted_only_admin_full(site, monkeypatch, tmp_path):
    calls = _export_calls(monkeypatch)
    at, _, _ = _app(site, monkeypatch, tmp_path)
    _page(_login(at, REVIEWER), "Export")
    box = at.checkbox(key="x_deid")
    assert box.value is True and box.disabled
    assert calls[-1]["redact"] is True and not calls[-1].get("with_paths")
    # a crafted widget state cannot turn redaction off for a reviewer
    at.session_state["x_deid"] = False
    at.run()
    assert calls[-1]["redact"] is True
    at.button(key="logout").click().run()
    _page(_login(at, ADMIN), "Export")
    at.checkbox(key="x_deid").uncheck().run()
    assert calls[-1]["redact"] is False


def test_roles_table_and_reviewer_cannot_save_checked(site, monkeypatch, tmp_path):
    assert auth.allowed("reviewer", "review") and auth.allowed("admin", "review")
    assert not auth.allowed("reviewer", "export_full") and auth.allowed("admin", "export_full")
    assert not auth.allowed("reviewer", "check_upload") and not auth.allowed("reviewer", "save_checked")
    assert not auth.allowed(None, "view") and not auth.allowed("admin", "no-such-action")
    at, db, _ = _app(site, monkeypatch, tmp_path)
    _page(_login(at, REVIEWER), "Check now")
    at.text_area(key="paste_report").input("FINDINGS: Left effusion.\n\nIMPRESSION: Right effusion.")
    at.button(key="run_check").click().run()
    assert not [b for b in at.button if b.key == "save_checked"]
    before = Store(str(db)).counts()["studies"]
    at.button(key="logout").click().run()
    _page(_login(at, ADMIN), "Check now")
    at.text_area(key="paste_report").input("FINDINGS: Left effusion.\n\nIMPRESSION: Right effusion.")
    at.button(key="run_check").click().run()
    at.button(key="save_checked").click().run()
    assert not at.exception
    with Store(str(db)) as s:
        assert s.counts()["studies"] == before + 1


# ---------------------------------------------------------------- 9. logout, revocation, expiry
def test_access_log_records_login_view_decision_logout(site, monkeypatch, tmp_path):
    """Issue 20 item 4 through the app: who logged in, opened which study, decided and logged out."""
    from medmm.audit import access_log

    at, db, _ = _app(site, monkeypatch, tmp_path)
    _page(_login(at, REVIEWER), "Study")
    at.run()  # a rerun of the same study page is not a second view
    key = at.session_state["_viewed"]
    at.button(key="quick_true_error").click().run()
    at.button(key="logout").click().run()
    with Store(str(db)) as s:
        events = [(e["event"], e["user"], e["study_key"]) for e in access_log.query(s.conn)]
        assert s.verify().ok
    assert events == [("login", REVIEWER, None), ("view", REVIEWER, key), ("decision", REVIEWER, key),
                      ("logout", REVIEWER, None)], events


def test_logout_clears_the_whole_session(site, monkeypatch, tmp_path):
    at, _, _ = _app(site, monkeypatch, tmp_path)
    _page(_login(at, ADMIN), "Check now")
    secret = "FINDINGS: Patient DOE_JANE has a left effusion."
    at.text_area(key="paste_report").input(secret)
    at.button(key="run_check").click().run()
    at.button(key="logout").click().run()
    assert _is_login_form(at)
    for key in ("session", "checked", "paste_report", "page", "upload"):
        assert key not in at.session_state
    _page(_login(at, REVIEWER), "Check now")
    assert at.text_area(key="paste_report").value == ""
    assert secret not in _all_text(at)


def test_removed_user_and_changed_role_take_effect_at_once(site, monkeypatch, tmp_path):
    at, _, users = _app(site, monkeypatch, tmp_path)
    _login(at, ADMIN)
    assert at.sidebar.radio
    data = load_users(str(users))
    data[ADMIN]["role"] = "reviewer"
    import yaml
    (users).write_text(yaml.safe_dump({"users": data}))
    at.run()
    assert _is_login_form(at) and any("changed by an administrator" in w.value for w in at.warning)
    _login(at, REVIEWER)
    assert at.sidebar.radio
    assert remove_user(str(users), REVIEWER)
    at.run()
    assert _is_login_form(at)


def test_idle_and_absolute_lifetime(site, monkeypatch, tmp_path):
    at, _, _ = _app(site, monkeypatch, tmp_path)
    _login(at, REVIEWER)
    at.session_state["session"].last_seen -= 31 * 60
    sessions.REGISTRY.touch(sessions.NO_CLIENT, time.time() - 31 * 60)  # no tab of this browser active since
    at.run()
    assert _is_login_form(at) and any("inactivity" in w.value for w in at.warning)
    _login(at, REVIEWER)
    at.session_state["session"].started -= 13 * 3600  # active all along, but logged in too long
    at.run()
    assert _is_login_form(at) and any("at most 12 hours" in w.value for w in at.warning)


def test_page_blanks_itself_when_idle(site, monkeypatch, tmp_path):
    at, _, _ = _app(site, monkeypatch, tmp_path)
    _login(at, REVIEWER)
    scripts = [h.proto.body for h in at.html if "__medmmIdle" in h.proto.body]
    assert scripts and f"{30 * 60 * 1000})" in scripts[0] and "location.reload" in scripts[0]


# ---------------------------------------------------------------- 10. the served app, attacked over the wire
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(proc: subprocess.Popen, port: int) -> None:
    deadline = time.time() + 90
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                return
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError(proc.stdout.read().decode(errors="replace")[-3000:]) from None
            time.sleep(0.3)


def _stop(proc: subprocess.Popen) -> None:
    """Stop what the test started and everything it started (its own process group)."""
    import signal

    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=15)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def server(site):
    port = _free_port()
    env = dict(os.environ)
    env.pop("MEDMM_APP_DB", None)
    env.pop("MEDMM_APP_CONFIG", None)
    proc = subprocess.Popen([sys.executable, "-m", "medmm.cli", "app", "--config", str(site / "app.yaml"), "--port",
                             str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    _wait_healthy(proc, port)
    yield port
    _stop(proc)


@pytest.mark.slow
def test_stopping_medmm_app_stops_its_server(site):
    """SIGTERM to `medmm app` (a service manager stopping it) reaches the server it started."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDMM_APP_")}
    proc = subprocess.Popen([sys.executable, "-m", "medmm.cli", "app", "--config", str(site / "app.yaml"), "--port",
                             str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_healthy(proc, port)
        proc.terminate()  # the CLI process only, not its group
        proc.wait(timeout=30)
        deadline = time.time() + 20
        while time.time() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) != 0:
                    break
            time.sleep(0.3)
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, "the server outlived medmm app"
    finally:
        _stop(proc)


def _get(url: str, headers: dict | None = None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.headers.get_all("set-cookie") or []
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.headers.get_all("set-cookie") or []


class Wire:
    """A minimal Streamlit websocket client: rerun with widget values, collect what is rendered."""

    def __init__(self, port: int, cookie: str | None = None, session_id: str | None = None):
        self.port, self.cookie, self.session_id_in = port, cookie, session_id
        self.session_id: str | None = None
        self.elements: list = []
        self.closed_code: int | None = None

    async def __aenter__(self):
        import websockets

        protocols = ["streamlit"] + (["xsrf", self.session_id_in] if self.session_id_in else [])
        headers = {"Cookie": self.cookie} if self.cookie else {}
        self.ws = None
        try:
            self.ws = await websockets.connect(f"ws://127.0.0.1:{self.port}/_stcore/stream", subprotocols=protocols,
                                               additional_headers=headers, max_size=None)
        except websockets.exceptions.InvalidStatus as exc:  # refused before the websocket opened
            self.closed_code = exc.response.status_code
        return self

    async def __aexit__(self, *exc):
        if self.ws is not None:
            await self.ws.close()

    async def rerun(self, widgets=(), wait_for=None, timeout: float = 60.0) -> list:
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
        from websockets.exceptions import ConnectionClosed

        if self.ws is None:
            return []
        msg = BackMsg()
        msg.rerun_script.query_string = ""
        for w in widgets:
            msg.rerun_script.widget_states.widgets.append(w)
        self.elements = []
        try:
            await self.ws.send(msg.SerializeToString())
            deadline = time.time() + timeout
            finished = 0
            while time.time() < deadline:
                raw = await asyncio.wait_for(self.ws.recv(), timeout=deadline - time.time())
                fm = ForwardMsg()
                fm.ParseFromString(raw)
                kind = fm.WhichOneof("type")
                if kind == "new_session":
                    self.session_id = fm.new_session.initialize.session_id
                elif kind == "delta" and fm.delta.WhichOneof("type") == "new_element":
                    self.elements.append(fm.delta.new_element)
                elif kind == "script_finished":
                    finished += 1
                    if wait_for is None or wait_for(self):
                        break
        except ConnectionClosed as exc:
            self.closed_code = exc.rcvd.code if exc.rcvd else -1
        except (TimeoutError, asyncio.TimeoutError):
            pass  # what was rendered so far is the answer
        return self.elements

    def texts(self) -> str:
        out = []
        for e in self.elements:
            kind = e.WhichOneof("type")
            inner = getattr(e, kind)
            for attr in ("body", "label"):
                if hasattr(inner, attr):
                    out.append(str(getattr(inner, attr)))
        return "\n".join(out)

    def widget(self, kind: str, label: str):
        for e in self.elements:
            if e.WhichOneof("type") == kind and getattr(e, kind).label == label:
                return getattr(e, kind)
        raise KeyError((kind, label, self.texts()[:500]))


def _cookie_for(port: int) -> str:
    status, headers, cookies = _get(f"http://127.0.0.1:{port}/")
    assert status == 200
    jar = "; ".join(c.split(";")[0] for c in cookies)
    assert "medmm_session=" in jar
    return jar


async def _victim_logs_in(port: int, victim: Wire) -> None:
    from streamlit.proto.WidgetStates_pb2 import WidgetState

    await victim.rerun()
    assert "User name" in victim.texts()
    user, pwd = victim.widget("text_input", "User name"), victim.widget("text_input", "Password")
    submit = victim.widget("button", "Log in")
    states = [WidgetState(id=user.id, string_value=ADMIN), WidgetState(id=pwd.id, string_value=PASSWORD),
              WidgetState(id=submit.id, trigger_value=True)]
    await victim.rerun(states, wait_for=lambda w: "_medmm/login?r=" in w.texts())
    # the page sends the browser to the server for a new token (what the script in the page does)
    victim.cookie = _rotate(port, victim.cookie, _nonce(victim.texts()))
    await victim.ws.close()
    await victim.__aenter__()
    await victim.rerun(wait_for=lambda w: "Log out" in w.texts())
    assert f"**{md_escape(ADMIN)}** (admin)" in victim.texts(), victim.texts()[:800]
    assert victim.session_id


def _nonce(texts: str) -> str:
    import re

    found = re.search(r"_medmm/login\?r=([A-Za-z0-9_-]+)", texts)
    assert found, texts[:800]
    return found.group(1)


def _rotate(port: int, cookie: str | None, nonce: str, headers: dict | None = None) -> str:
    """GET /_medmm/login?r=NONCE with the browser's cookie: a 303 with the new token's cookie."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", f"/_medmm/login?r={nonce}", headers={**({"Cookie": cookie} if cookie else {}), **(headers or {})})
    r = conn.getresponse()
    r.read()
    got = r.headers.get_all("set-cookie") or []
    conn.close()
    assert r.status == 303 and got, (r.status, got)
    return "; ".join(c.split(";")[0] for c in got)


@pytest.mark.slow
def test_session_id_alone_does_not_take_over_a_login(server):
    """The issue's attack: a second websocket presenting the victim's session ID (with no cookie, or
    with the attacker's own cookie) must not see the logged-in app."""

    async def scenario():
        async with Wire(server, cookie=_cookie_for(server)) as victim:
            await _victim_logs_in(server, victim)
            sid = victim.session_id
            for attacker_cookie in (None, _cookie_for(server)):
                async with Wire(server, cookie=attacker_cookie, session_id=sid) as attacker:
                    await attacker.rerun(timeout=20)
                    seen = attacker.texts()
                    assert md_escape(ADMIN) not in seen and "Log out" not in seen and "Worklist" not in seen
                    assert "pleural" not in seen
                    assert attacker.closed_code in (403, 1008) or "User name" in seen
            # the victim's session is untouched
            await victim.rerun(wait_for=lambda w: "Log out" in w.texts())
            assert f"**{md_escape(ADMIN)}** (admin)" in victim.texts()
            # an upload into the victim's session from another browser is refused
            req = urllib.request.Request(f"http://127.0.0.1:{server}/_stcore/upload_file/{sid}/f1", data=b"x",
                                         method="PUT", headers={"Cookie": _cookie_for(server)})
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(req, timeout=10)
            assert err.value.code == 403
        # the victim closed the tab: the session stays resumable for a while, but not by the ID alone
        async with Wire(server, cookie=_cookie_for(server), session_id=sid) as attacker:
            await attacker.rerun(timeout=20)
            seen = attacker.texts()
            assert "Log out" not in seen and "Worklist" not in seen
            assert attacker.closed_code in (403, 1008) or "User name" in seen

    asyncio.run(scenario())


@pytest.mark.slow
def test_planted_cookie_never_becomes_the_victims_session(server):
    """Issue 20 N1 (session fixation), over the wire: a cookie value planted in the victim's browser
    before login is never the victim's session afterwards."""
    url, media = f"http://127.0.0.1:{server}/", f"http://127.0.0.1:{server}/media/0123.png"
    # a value the server never issued is ignored and replaced, over http and behind TLS alike
    planted = "A" * 64
    for extra, name in (({}, "medmm_session"), ({"X-Forwarded-Proto": "https"}, "__Host-medmm_session")):
        _, _, cookies = _get(url, {"Cookie": f"{name}={planted}", **extra})
        assert any(c.startswith(name + "=") and planted not in c for c in cookies), cookies
    # behind TLS the plain cookie (which http or a sibling subdomain can plant) is not accepted even if issued
    _, _, cookies = _get(url, {"Cookie": _cookie_for(server), "X-Forwarded-Proto": "https"})
    assert any(c.startswith("__Host-medmm_session=") and "Secure" in c for c in cookies)

    async def scenario():
        planted = _cookie_for(server)  # issued by the server to the attacker, then planted in the victim's browser
        async with Wire(server, cookie=planted) as victim:
            await _victim_logs_in(server, victim)
            assert victim.cookie != planted  # the login rotated the token
            assert _get(media, {"Cookie": victim.cookie})[0] != 403  # the victim's new token is logged in
            assert _get(media, {"Cookie": planted})[0] == 403  # the attacker's copy is not
            async with Wire(server, cookie=planted) as attacker:
                await attacker.rerun(timeout=20, wait_for=lambda w: "User name" in w.texts())
                assert "Log out" not in attacker.texts() and "User name" in attacker.texts()
            # a login nonce is spent once, and only by the browser it was issued to
            await victim.rerun(wait_for=lambda w: "Log out" in w.texts())
            assert "Log out" in victim.texts()

    asyncio.run(scenario())


@pytest.mark.slow
def test_a_login_survives_a_server_restart(site, tmp_path):
    """Issue 20 item 5: logins live in the store, so restarting the app logs nobody out (and the
    access log shows the login)."""
    from medmm.audit import access_log

    shutil.copy(site / "pristine.sqlite", tmp_path / "a.sqlite")
    shutil.copy(site / "users.pristine.yaml", tmp_path / "users.yaml")
    (tmp_path / "app.yaml").write_text("db: a.sqlite\nusers_file: users.yaml\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDMM_APP_")}

    def start(port: int) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-m", "medmm.cli", "app", "--config", str(tmp_path / "app.yaml"),
                                 "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        _wait_healthy(proc, port)
        return proc

    port = _free_port()
    proc = start(port)
    try:
        async def log_in() -> str:
            async with Wire(port, cookie=_cookie_for(port)) as victim:
                await _victim_logs_in(port, victim)
                return victim.cookie

        cookie = asyncio.run(log_in())
    finally:
        _stop(proc)
    proc = start(port)
    try:
        async def after() -> str:
            async with Wire(port, cookie=cookie) as again:
                await again.rerun(wait_for=lambda w: "Log out" in w.texts() or "User name" in w.texts())
                return again.texts()

        seen = asyncio.run(after())
        assert "Log out" in seen and f"**{md_escape(ADMIN)}** (admin)" in seen
    finally:
        _stop(proc)
    with Store(str(tmp_path / "a.sqlite")) as s:
        assert [e["user"] for e in access_log.query(s.conn, events=["login"])] == [ADMIN]


@pytest.mark.slow
def test_served_app_headers_cookie_media_and_settings(server):
    status, headers, cookies = _get(f"http://127.0.0.1:{server}/")
    h = {k.lower(): v for k, v in headers.items()}
    assert h["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in h["content-security-policy"]
    assert "img-src 'self' data: blob:" in h["content-security-policy"]  # no remote images, whatever the markup
    assert h["x-content-type-options"] == "nosniff" and h["referrer-policy"] == "no-referrer"
    cookie = [c for c in cookies if c.startswith("medmm_session=")][0]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    # behind a TLS reverse proxy: the __Host- cookie, Secure
    _, _, cookies = _get(f"http://127.0.0.1:{server}/", {"X-Forwarded-Proto": "https"})
    assert any(c.startswith("__Host-medmm_session=") and "Secure" in c and "Path=/" in c for c in cookies)
    # media (images, downloads) only for a logged-in browser
    assert _get(f"http://127.0.0.1:{server}/media/0123.png")[0] == 403
    # production settings reach the browser: no tracebacks, minimal toolbar
    status, headers, _ = _get(f"http://127.0.0.1:{server}/_stcore/host-config")
    assert status == 200


def test_medmm_app_passes_production_settings_and_warns_on_all_interfaces(site, monkeypatch, capsys):
    from medmm import cli
    from medmm.app import cli as app_cli  # `medmm app` is declared in medmm.app.cli (the CLI registry)
    from medmm.app.server import STREAMLIT_SETTINGS

    seen = {}
    monkeypatch.setattr(app_cli, "_run_forwarding_signals", lambda cmd, env: seen.setdefault("cmd", cmd) and 0)
    assert cli.main(["app", "--config", str(site / "app.yaml"), "--address", "0.0.0.0", "--port", "9"]) == 0
    err = capsys.readouterr().err
    assert "warning: listening on 0.0.0.0" in err and "TLS reverse proxy" in err
    assert seen["cmd"][1:3] == ["-m", "medmm.app.server"]
    assert STREAMLIT_SETTINGS["client.showErrorDetails"] == "none"
    assert STREAMLIT_SETTINGS["server.fileWatcherType"] == "none"
    assert STREAMLIT_SETTINGS["client.toolbarMode"] == "minimal"
    assert STREAMLIT_SETTINGS["server.enableXsrfProtection"] is True
    cli.main(["app", "--config", str(site / "app.yaml"), "--port", "9"])
    assert "warning" not in capsys.readouterr().err


@pytest.mark.slow
def test_plain_streamlit_run_is_local_and_serves_only_a_notice(site):
    """`streamlit run apps/report_checker.py` (no medmm server, so no session cookie) binds to
    127.0.0.1 (apps/.streamlit/config.toml) and serves a notice instead of the login form."""
    import tomllib

    cfg = tomllib.loads(open(os.path.join(ROOT, "apps", ".streamlit", "config.toml"), encoding="utf-8").read())
    assert cfg["server"]["address"] == "127.0.0.1"
    assert cfg["client"]["showErrorDetails"] == "none" and cfg["server"]["fileWatcherType"] == "none"
    port = _free_port()
    env = dict(os.environ, MEDMM_APP_CONFIG=str(site / "app.yaml"))
    env.pop("MEDMM_APP_DB", None)
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", APP, "--server.port", str(port)], env=env,
                            cwd=str(site), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_healthy(proc, port)
        others = [a for a in {i[4][0] for i in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
                  if not a.startswith("127.")]
        for addr in others:  # not reachable from the network
            with socket.socket() as s:
                s.settimeout(2)
                assert s.connect_ex((addr, port)) != 0

        async def scenario():
            async with Wire(port) as w:
                await w.rerun(timeout=30)
                seen = w.texts()
                assert "must be started with `medmm app`" in seen and "User name" not in seen

        asyncio.run(scenario())
    finally:
        _stop(proc)


_COOKIE_ONLY_LAUNCHER = '''
import sys
import streamlit as st
from starlette.middleware import Middleware
from medmm.app.server import STREAMLIT_SETTINGS, SecurityMiddleware


class CookieOnly(SecurityMiddleware):
    """medmm's middleware without its websocket guard: only the app's own per-rerun check is left."""

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":
            return await self.app(scope, receive, send)
        return await super().__call__(scope, receive, send)


import os
from medmm.app.auth import AppConfig
from medmm.app.sessions import REGISTRY

REGISTRY.attach(AppConfig.load(os.environ["MEDMM_APP_CONFIG"]).db)  # what build_app does
app = st.App(sys.argv[1], middleware=[Middleware(CookieOnly)])
app.run(config={**STREAMLIT_SETTINGS, "server.port": int(sys.argv[2]), "server.address": "127.0.0.1"})
'''


@pytest.mark.slow
def test_app_check_alone_stops_the_takeover(site, tmp_path):
    """Defence in depth: with the server's websocket guard removed, the attacker's connection does
    attach to the victim's session, and the app's per-rerun cookie check shows it the login form."""
    launcher = tmp_path / "launcher.py"
    launcher.write_text(_COOKIE_ONLY_LAUNCHER)
    port = _free_port()
    env = dict(os.environ, MEDMM_APP_CONFIG=str(site / "app.yaml"))
    env.pop("MEDMM_APP_DB", None)
    proc = subprocess.Popen([sys.executable, str(launcher), APP, str(port)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_healthy(proc, port)

        async def scenario():
            async with Wire(port, cookie=_cookie_for(port)) as victim:
                await _victim_logs_in(port, victim)
                async with Wire(port, cookie=_cookie_for(port), session_id=victim.session_id) as attacker:
                    await attacker.rerun(timeout=30, wait_for=lambda w: "User name" in w.texts())
                    seen = attacker.texts()
                    assert attacker.closed_code is None and attacker.session_id == victim.session_id  # attached
                    assert "User name" in seen and "Log out" not in seen and "Worklist" not in seen
            # a victim who closed the tab: the stored session resumed by its ID alone shows the login form too
            async with Wire(port, cookie=_cookie_for(port)) as victim:
                await _victim_logs_in(port, victim)
                sid = victim.session_id
            async with Wire(port, cookie=_cookie_for(port), session_id=sid) as attacker:
                await attacker.rerun(timeout=30, wait_for=lambda w: "User name" in w.texts())
                assert attacker.session_id == sid  # it resumed the stored session
                assert "Log out" not in attacker.texts() and "User name" in attacker.texts()

        asyncio.run(scenario())
    finally:
        _stop(proc)


# ---------------------------------------------------------------- 10. model backends: where images go, what loads
class _Recorder:
    """A tiny HTTP server answering chat completions (or acting as a forward proxy): records what it saw."""

    def __init__(self):
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        seen = self.seen = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers["Content-Length"]))
                seen.append({"path": self.path, "auth": self.headers.get("Authorization")})
                body = json.dumps({"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_http_backend_ignores_proxy_env_unless_asked(monkeypatch):
    import warnings

    from PIL import Image

    from medmm.models import Request
    from medmm.models.http import DataLeavesMachineWarning, HTTPVLM

    server, proxy = _Recorder(), _Recorder()
    try:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy.port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        req = Request(prompt="Is there an effusion?", images=(Image.new("L", (8, 8)),))
        with warnings.catch_warnings():
            warnings.simplefilter("error", DataLeavesMachineWarning)  # local server, no proxy: no warning
            HTTPVLM(f"http://127.0.0.1:{server.port}", api_key="sk-secret", retries=0).generate([req])
        assert len(server.seen) == 1 and proxy.seen == []
        with pytest.warns(DataLeavesMachineWarning, match="through the proxy 127.0.0.1"):
            vlm = HTTPVLM(f"http://127.0.0.1:{server.port}", api_key="sk-secret", retries=0, trust_env=True)
        vlm.generate([req])
        assert len(proxy.seen) == 1 and proxy.seen[0]["auth"] == "Bearer sk-secret"  # what the warning is about
    finally:
        server.close()
        proxy.close()


def test_http_backend_warns_before_sending_images_off_the_machine():
    import warnings

    from medmm.models.http import DataLeavesMachineWarning, HTTPVLM

    with pytest.warns(DataLeavesMachineWarning, match="images and the API key to 10.1.2.3.*plain http"):
        HTTPVLM("http://10.1.2.3:8000", api_key="k")
    with pytest.warns(DataLeavesMachineWarning, match="models.example.org, which is not this machine"):
        HTTPVLM("https://models.example.org/v1")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataLeavesMachineWarning)
        for url in ("http://localhost:8000", "http://127.0.0.5:1", "http://[::1]:8000"):
            HTTPVLM(url, api_key="k")


def test_lora_adapter_with_decoy_safetensors_and_a_pickle_is_refused(tmp_path):
    from medmm.models.base import ModelError
    from medmm.models.hf import _attach_adapter

    adapter = tmp_path / "lora"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text('{"peft_type": "LORA", "r": 2, "target_modules": ["q_proj"]}')
    (adapter / "decoy.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    (adapter / "adapter_model.bin").write_bytes(b"\x80\x04K\x01.")  # what peft would torch.load
    with pytest.raises(ModelError, match=r"pickle-based files \(adapter_model.bin\)"):
        _attach_adapter(object(), str(adapter), allow_pickle=False)
    (adapter / "adapter_model.bin").unlink()
    with pytest.raises(ModelError, match="no adapter_model.safetensors"):
        _attach_adapter(object(), str(adapter), allow_pickle=False)


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/usr/bin/chromium"), reason="Debian chromium not installed (.ci/run installs it)")
def test_in_chromium_no_remote_image_no_link_and_the_idle_page_blanks(site, tmp_path):
    """In a real browser under the served CSP: the study page loads no remote image and shows no link
    from report text, and an idle page blanks itself back to the login form."""
    playwright = pytest.importorskip("playwright.sync_api")
    cfg = tmp_path / "app.yaml"
    shutil.copy(site / "pristine.sqlite", tmp_path / "a.sqlite")
    shutil.copy(site / "users.pristine.yaml", tmp_path / "users.yaml")
    cfg.write_text("db: a.sqlite\nusers_file: users.yaml\nsession_timeout_minutes: 0.25\n")  # 15 s idle
    port = _free_port()
    env = dict(os.environ)
    env.pop("MEDMM_APP_DB", None)
    env.pop("MEDMM_APP_CONFIG", None)
    proc = subprocess.Popen([sys.executable, "-m", "medmm.cli", "app", "--config", str(cfg), "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_healthy(proc, port)
        args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"]
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=args)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            requested = []
            page.on("request", lambda r: requested.append(r.url))
            page.goto(f"http://127.0.0.1:{port}")
            page.get_by_role("textbox", name="User name").fill(REVIEWER)
            page.get_by_role("textbox", name="Password").fill(PASSWORD)
            before = {c["name"]: c["value"] for c in page.context.cookies()}["medmm_session"]
            page.get_by_role("button", name="Log in").click()
            page.get_by_text("Log out").wait_for(timeout=30000)
            # issue 20 N1: the page went through /_medmm/login and the browser holds a new token
            assert {c["name"]: c["value"] for c in page.context.cookies()}["medmm_session"] != before
            page.get_by_test_id("stRadioGroup").get_by_text("Study", exact=True).click()  # the page choice, not the worklist column
            page.get_by_text("See [the portal]").first.wait_for(timeout=30000)  # the report text, shown as text
            assert not any("beacon.png" in u or "evil.example" in u for u in requested)
            assert page.locator("img[src*='beacon']").count() == 0
            assert page.locator("a[href*='evil.example']").count() == 0
            cookies = {c["name"]: c for c in page.context.cookies()}
            assert cookies["medmm_session"]["httpOnly"] and cookies["medmm_session"]["sameSite"] == "Strict"
            assert page.evaluate("document.cookie").find("medmm_session") == -1  # not readable by scripts
            # idle: no interaction for the timeout -> the page blanks and reloads to the login form
            page.get_by_role("textbox", name="User name").wait_for(timeout=40000)
            assert page.get_by_text("See [the portal]").count() == 0
            browser.close()
    finally:
        _stop(proc)
