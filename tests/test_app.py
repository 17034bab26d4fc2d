"""The review app: Streamlit AppTest checks and a real-browser end-to-end test (Chromium + Playwright)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from medmm.app.auth import add_user, authenticate, load_users
from medmm.audit.runner import audit
from medmm.audit.store import Store
from medmm.reports.corpus import read_corpus
from medmm.reports.inject import inject_dataset
from medmm.synth import SMALL, synthesize

APP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "apps", "report_checker.py")
ARTIFACTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "test-artifacts")
USER, PASSWORD = "dr_test", "a-long-password"


@pytest.fixture(autouse=True)
def _restore_main_module():
    """Streamlit's AppTest installs the app script as ``sys.modules['__main__']`` and leaves it there;
    process pools started later in this test session (forkserver/spawn children re-import
    ``__main__``) would then run the app in every worker. Put the real one back."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    """Synthetic studies with injected errors, audited into a store; a users file; an app config."""
    d = tmp_path_factory.mktemp("app")
    synthesize(str(d / "syn"), 6, seed=2, config=SMALL, workers=1)
    rows = inject_dataset(read_corpus(str(d / "syn" / "manifest.jsonl")).rows, rate=1.0,
                          types=("laterality", "negation", "contradiction"), seed=1)
    with open(d / "ds.jsonl", "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
    audit(str(d / "ds.jsonl"), str(d / "a.sqlite"), workers=1, progress=False)
    shutil.copy(d / "a.sqlite", d / "pristine.sqlite")  # for the browser test: no review written by other tests
    add_user(str(d / "users.yaml"), USER, "reviewer", PASSWORD)
    (d / "app.yaml").write_text("db: a.sqlite\nusers_file: users.yaml\nsession_timeout_minutes: 30\n")
    return d


def test_users_file_has_no_plaintext(demo_store):
    text = (demo_store / "users.yaml").read_text()
    assert PASSWORD not in text and "hash" in text and "salt" in text
    users = load_users(str(demo_store / "users.yaml"))
    assert authenticate(users, USER, PASSWORD) == "reviewer"
    assert authenticate(users, USER, "wrong-password") is None
    assert authenticate(users, "nobody", PASSWORD) is None


def _app(demo_store, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("MEDMM_APP_CONFIG", str(demo_store / "app.yaml"))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception
    return at


def _login(at, password: str = PASSWORD):
    at.text_input(key="login_user").input(USER)
    at.text_input(key="login_password").input(password)
    at.button[0].click().run()
    assert not at.exception


def test_login_required_and_no_report_text_before(demo_store, monkeypatch):
    at = _app(demo_store, monkeypatch)
    labels = [t.label for t in at.text_input]
    assert labels == ["User name", "Password"]
    shown = " ".join(m.value for m in at.markdown)
    with Store(str(demo_store / "a.sqlite")) as s:
        report = s.conn.execute("SELECT text FROM reports LIMIT 1").fetchone()[0]
    assert report[:30] not in shown and "FINDINGS" not in shown
    assert not at.sidebar.radio  # no navigation before login


def test_wrong_password_refused(demo_store, monkeypatch):
    at = _app(demo_store, monkeypatch)
    _login(at, password="not-the-password")
    assert any("Wrong user name or password" in e.value for e in at.error)
    assert "session" not in at.session_state


def test_flagged_study_renders_and_decision_is_stored(demo_store, monkeypatch):
    at = _app(demo_store, monkeypatch)
    _login(at)
    at.sidebar.radio(key="page").set_value("Study").run()
    assert not at.exception
    html = " ".join(m.value for m in at.markdown)
    assert 'class="flag flag-' in html  # a flagged span is highlighted
    with Store(str(demo_store / "a.sqlite")) as s:
        key = s.worklist()[0]["study_key"]
        flag = s.study(key)["flags"][0]
    assert flag["explanation"] in " ".join(t.value for t in at.text)  # report-derived text: st.text, not Markdown
    at.radio(key=f"dec_{flag['id']}").set_value("false_positive")
    at.text_input(key=f"com_{flag['id']}").input("side is right in both")
    at.button(key=f"save_{flag['id']}").click().run()
    assert not at.exception
    with Store(str(demo_store / "a.sqlite")) as s:
        assert s.latest_decision(flag["id"]) == "false_positive"
        hist = s.history(key)
        assert hist[-1]["reviewer"] == USER and hist[-1]["comment"] == "side is right in both"


def test_session_expires_after_inactivity(demo_store, monkeypatch):
    at = _app(demo_store, monkeypatch)
    _login(at)
    session = at.session_state["session"]
    session.last_seen -= 31 * 60
    # the login's last activity is kept in the store's registry too (any tab of the browser): idle there as well
    from medmm.app import sessions

    sessions.REGISTRY.touch(session.token_hash, now=session.last_seen)
    at.run()
    assert any("expired" in w.value for w in at.warning)
    assert [t.label for t in at.text_input] == ["User name", "Password"]


# ---------------------------------------------------------------- real browser
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/usr/bin/chromium"), reason="Debian chromium not installed (.ci/run installs it)")
def test_end_to_end_in_chromium(demo_store, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    db = tmp_path / "e2e.sqlite"
    shutil.copy(demo_store / "pristine.sqlite", db)
    port = _free_port()
    env = dict(os.environ)
    env.pop("MEDMM_APP_CONFIG", None)
    # medmm app: Streamlit behind medmm's session-cookie middleware (a plain `streamlit run` serves only a notice)
    server = subprocess.Popen([sys.executable, "-m", "medmm.cli", "app", "--config", str(demo_store / "app.yaml"),
                               "--db", str(db), "--port", str(port), "--address", "127.0.0.1"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    os.makedirs(ARTIFACTS, exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.3)
        with Store(str(db)) as s:
            key = s.worklist()[0]["study_key"]
            flag = s.study(key)["flags"][0]
            assert flag["decision"] is None and not s.history(key)
        args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"]
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=args)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})

            def login():
                page.goto(url)
                box = page.get_by_role("textbox", name="User name")
                box.or_(page.get_by_role("button", name="Log out")).first.wait_for(timeout=30000)
                if box.count():  # a session the server still holds (issue 20) needs no second login
                    box.fill(USER)
                    page.get_by_role("textbox", name="Password").fill(PASSWORD)
                    page.get_by_role("button", name="Log in").click()
                page.get_by_text(f"{USER}").first.wait_for(timeout=30000)

            login()
            page.screenshot(path=os.path.join(ARTIFACTS, "e2e-1-worklist.png"))
            page.get_by_test_id("stRadioGroup").get_by_text("Study", exact=True).click()  # the page choice, not the worklist column
            page.get_by_text(f"Study {key}").wait_for(timeout=30000)
            page.screenshot(path=os.path.join(ARTIFACTS, "e2e-2-study.png"), full_page=True)
            box = page.locator(".stVerticalBlock").filter(has_text=flag["explanation"]).last
            box.get_by_text("False positive", exact=True).first.click()
            box.get_by_label("Comment").fill("checked the image: not an error")
            box.get_by_label("Comment").press("Enter")
            box.get_by_role("button", name="Save decision").click()
            page.get_by_text("current decision: False positive").first.wait_for(timeout=30000)
            page.screenshot(path=os.path.join(ARTIFACTS, "e2e-3-saved.png"), full_page=True)
            page.reload()
            login()  # a reload starts a new session: log in again
            page.get_by_test_id("stRadioGroup").get_by_text("Study", exact=True).click()  # the page choice, not the worklist column
            page.get_by_text("current decision: False positive").first.wait_for(timeout=30000)
            page.screenshot(path=os.path.join(ARTIFACTS, "e2e-4-after-reload.png"), full_page=True)
            browser.close()
        with Store(str(db)) as s:
            assert s.latest_decision(flag["id"]) == "false_positive"
            assert s.history(key)[-1]["comment"] == "checked the image: not an error"
    finally:
        server.terminate()  # medmm app forwards SIGTERM to the server it started
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)


def test_acquisition_slice_matches_stored_pixels_and_boxes(tmp_path):
    """The viewer shows the slice as stored, so manifest boxes (x = column, y = row) line up."""
    import numpy as np

    from medmm.app.views import acquisition_slice, boxes_for
    from medmm.imaging import load_volume, load_nifti

    synthesize(str(tmp_path / "s"), 3, seed=4, config=SMALL, workers=1, kinds=("mr",))
    rec = json.loads((tmp_path / "s" / "manifest.jsonl").read_text().splitlines()[0])
    vol = load_volume(str(tmp_path / "s" / rec["images"][0]["path"]))
    labels = load_nifti(str(tmp_path / "s" / rec["images"][0]["label_map"]))
    for f in rec["findings"]:
        for b in f["boxes"]:
            img = acquisition_slice(vol, b["slice"], window=(500, 1000))
            lab = np.swapaxes(labels.data[:, :, b["slice"]], 0, 1)
            assert img.shape == lab.shape
            assert (lab[b["y1"]:b["y2"], b["x1"]:b["x2"]] == f["label"]).any()
            assert boxes_for([{**b, "label": f["type"]}], 0, b["slice"])


def _logged_in_on_copy(demo_store, monkeypatch, tmp_path):
    """The app, logged in, on a fresh copy of the store (no reviews from other tests)."""
    db = tmp_path / "copy.sqlite"
    shutil.copy(demo_store / "pristine.sqlite", db)
    monkeypatch.setenv("MEDMM_APP_DB", str(db))
    at = _app(demo_store, monkeypatch)
    _login(at)
    return at, db


def test_quick_decision_and_next_study(demo_store, monkeypatch, tmp_path):
    at, db = _logged_in_on_copy(demo_store, monkeypatch, tmp_path)
    at.sidebar.radio(key="page").set_value("Study").run()
    with Store(str(db)) as s:
        keys = [w["study_key"] for w in s.worklist()]
        first_flag = s.study(keys[0])["flags"][0]
    at.button(key="quick_true_error").click().run()
    assert not at.exception
    with Store(str(db)) as s:
        assert s.latest_decision(first_flag["id"]) == "true_error"
    at.button(key="next").click().run()
    assert any(f"Study {keys[1]}" in m.value for m in at.markdown)


def test_check_now_runs_the_checker_and_saves(demo_store, monkeypatch, tmp_path):
    at, db = _logged_in_on_copy(demo_store, monkeypatch, tmp_path)
    at.sidebar.radio(key="page").set_value("Check now").run()
    report = "FINDINGS: Small left pleural effusion.\n\nIMPRESSION: Small right pleural effusion."
    at.text_area(key="paste_report").input(report)
    at.button(key="run_check").click().run()
    assert not at.exception
    assert any("Error suspected" in m.value for m in at.markdown)
    assert any("laterality" in m.value for m in at.markdown)
    assert not [b for b in at.button if b.key == "save_checked"]  # reviewers cannot add studies
    assert any("Only admins" in c.value for c in at.caption)
    add_user(str(demo_store / "users.yaml"), "dr_admin", "admin", PASSWORD)
    at.button(key="logout").click().run()
    at.text_input(key="login_user").input("dr_admin")
    at.text_input(key="login_password").input(PASSWORD)
    at.button[0].click().run()
    at.sidebar.radio(key="page").set_value("Check now").run()
    at.text_area(key="paste_report").input(report)
    at.button(key="run_check").click().run()
    before = Store(str(db)).counts()["studies"]
    at.button(key="save_checked").click().run()
    with Store(str(db)) as s:
        assert s.counts()["studies"] == before + 1
        assert any(w["flag_types"] == ["laterality"] for w in s.worklist())
