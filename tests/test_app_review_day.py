"""The review app for a radiologist's day (issue 19 item 7): the worklist shows how to find a study in the
PACS, statuses read as what they are, numbers have fixed decimals, nothing reads "None", Next and "next
unreviewed flag", series named by what they are, boxes linked to their flag, one-based slices.
Streamlit AppTest (fast); the layout at laptop and desktop sizes is checked in Chromium (slow)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from medmm.app.auth import add_user
from medmm.audit.runner import audit
from medmm.audit.store import Store
from medmm.reports.corpus import read_corpus
from medmm.reports.inject import inject_dataset
from medmm.synth import SMALL, synthesize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP = os.path.join(ROOT, "apps", "report_checker.py")
ARTIFACTS = os.path.join(ROOT, "test-artifacts")
USER, PASSWORD = "dr_day", "a-long-password"


@pytest.fixture(autouse=True)
def _restore_main_module():
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture(scope="module")
def day_store(tmp_path_factory):
    """Synthetic studies (CT with its NIfTI copy, PA + lateral radiographs, MR), errors injected into some,
    accession number / exam date / description on all but one, audited; a reviewer; an app config."""
    d = tmp_path_factory.mktemp("day")
    synthesize(str(d / "syn"), 8, seed=2, config=SMALL, workers=1)
    recs = {json.loads(line)["study_id"]: json.loads(line) for line in open(d / "syn" / "manifest.jsonl")}
    rows = inject_dataset(read_corpus(str(d / "syn" / "manifest.jsonl")).rows, rate=0.6,
                          types=("laterality", "negation"), seed=3)
    with open(d / "syn" / "ds.jsonl", "w", encoding="utf-8") as fh:
        for n, r in enumerate(rows):
            rec = dict(recs[r["id"]], report=r["report"])
            if n != 0:
                rec |= {"accession_number": f"ACC{1000 + n}", "exam_date": f"2026-03-{n + 1:02d}",
                        "exam_description": f"{rec['modality']} {rec['body_part']}"}
            else:  # one study without the RIS fields: it must show blanks, not "None"
                for k in ("accession_number", "exam_date", "exam_time", "exam_description"):
                    rec.pop(k, None)
            fh.write(json.dumps(rec) + "\n")
    audit(str(d / "syn" / "ds.jsonl"), str(d / "a.sqlite"), workers=1, progress=False)
    add_user(str(d / "users.yaml"), USER, "reviewer", PASSWORD)
    (d / "app.yaml").write_text("db: a.sqlite\nusers_file: users.yaml\nsession_timeout_minutes: 30\n")
    return d


def _app(day_store, monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest

    db = tmp_path / "copy.sqlite"
    shutil.copy(day_store / "a.sqlite", db)  # every test on its own copy: reviews do not leak between tests
    monkeypatch.setenv("MEDMM_APP_CONFIG", str(day_store / "app.yaml"))
    monkeypatch.setenv("MEDMM_APP_DB", str(db))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.text_input(key="login_user").input(USER)
    at.text_input(key="login_password").input(PASSWORD)
    at.button[0].click().run()
    assert not at.exception
    return at, str(db)


def _text(at) -> str:
    """What the app writes itself (not the report, whose text may say "COMPARISON: None.")."""
    parts = [m.value for m in at.markdown if "medmm-report" not in m.value] + [c.value for c in at.caption]
    parts += [o for box in at.selectbox for o in box.options]
    for df in at.dataframe:
        parts.append(df.value.to_string())
    return "\n".join(str(p) for p in parts)


def test_worklist_columns_statuses_decimals_and_blanks(day_store, monkeypatch, tmp_path):
    at, db = _app(day_store, monkeypatch, tmp_path)
    table = at.dataframe[0].value
    assert list(table.columns[:5]) == ["Accession", "Exam date", "Description", "Modality", "Status"]
    assert {"ACC1001", "2026-03-02"} <= set(table["Accession"]) | set(table["Exam date"])
    assert "" in set(table["Accession"])  # the study without RIS fields: blank
    assert set(table["Status"]) <= {"flagged, not reviewed", "no flags", "partly reviewed", "reviewed", "check failed"}
    assert {"flagged, not reviewed", "no flags"} <= set(table["Status"])
    with Store(db) as s:  # an unflagged study reads "no flags", never "unreviewed"
        wl = {w["study_key"]: w for w in s.worklist()}
    for _, row in table.iterrows():
        assert (row["Status"] == "no flags") == (wl[row["Study"]]["n_flags"] == 0)
        assert row["Score"] == f"{wl[row['Study']]['score']:.2f}"
        top = wl[row["Study"]]["max_confidence"]
        assert row["Top confidence"] == ("" if top is None else f"{top:.2f}")
    assert "None" not in _text(at) and "nan" not in _text(at)
    # the page carries 50 rows at most and no list of every study
    assert len(table) <= 50 and not [s for s in at.selectbox if len(s.options) > 50]


def test_status_filter_and_counts(day_store, monkeypatch, tmp_path):
    at, _ = _app(day_store, monkeypatch, tmp_path)
    at.multiselect(key="f_state").set_value(["no flags"]).run()
    table = at.dataframe[0].value
    assert len(table) >= 1 and set(table["Status"]) == {"no flags"}
    assert any(f"{len(table)} of 8 studies" in c.value for c in at.caption)


def test_open_study_next_and_next_unreviewed_flag(day_store, monkeypatch, tmp_path):
    at, db = _app(day_store, monkeypatch, tmp_path)
    with Store(db) as s:
        order = [w["study_key"] for w in s.worklist()]
        flagged = [w["study_key"] for w in s.worklist() if w["n_flags"]]
    at.button(key="open_study").click().run()  # the first row of the page
    assert any(f"Study {order[0]}" in m.value and "(1 of 8)" in m.value for m in at.markdown)
    labels = [b.label for b in at.button]
    assert labels.index("Next unreviewed flag »") == labels.index("Next →") + 1  # beside Next
    at.button(key="next").click().run()
    assert any(f"Study {order[1]}" in m.value and "(2 of 8)" in m.value for m in at.markdown)
    # decide every flag of the second flagged study: "next unreviewed flag" from the first skips it
    with Store(db) as s:
        for f in s.study(flagged[1])["flags"]:
            s.add_review("dr_other", "true_error", flag_id=f["id"])
    at.session_state["study"] = flagged[0]
    at.run()
    at.button(key="next_flag").click().run()
    expected = flagged[2] if len(flagged) > 2 else flagged[0]
    assert any(f"Study {expected}" in m.value for m in at.markdown)


def test_series_named_by_view_and_nifti_copy_hidden(day_store, monkeypatch, tmp_path):
    at, db = _app(day_store, monkeypatch, tmp_path)
    with Store(db) as s:
        studies = [s.study(w["study_key"]) for w in s.worklist()]
    cxr = next(x for x in studies if any(p.endswith("cxr_lateral.dcm") for p in x["images"]))
    ct = next(x for x in studies if any(p.endswith("ct.nii.gz") for p in x["images"]))
    for study, names in ((cxr, ["PA", "Lateral"]), (ct, ["CT series"])):
        at.session_state["study"] = study["study_key"]
        at.sidebar.radio(key="page").set_value("Study").run()
        assert not at.exception
        box = at.selectbox(key=f"series_{study['study_key']}")
        assert list(box.options) == names  # the NIfTI copy is not a second image
        assert at.slider(key=f"slice_{study['study_key']}_0").min == 1 if names == ["CT series"] else True
    assert "None" not in _text(at)


def test_flag_linked_to_its_box_and_the_viewer_jumps_to_its_slice(day_store, monkeypatch, tmp_path):
    from medmm.app.views import regions_for_flag

    at, db = _app(day_store, monkeypatch, tmp_path)
    with Store(db) as s:
        pick = None
        for w in s.worklist():
            st = s.study(w["study_key"])
            for f in st["flags"]:
                regs = regions_for_flag(st["report"], f, st["regions"])
                if regs and st["regions"][regs[0]].get("slice") is not None:
                    pick = (st, f, st["regions"][regs[0]])
                    break
            if pick:
                break
    if pick is None:
        pytest.skip("no injected flag names a finding with a box on a slice in this synthetic set")
    study, flag, region = pick
    at.session_state["study"] = study["study_key"]
    at.sidebar.radio(key="page").set_value("Study").run()
    button = at.button(key=f"show_{flag['id']}")
    assert region["label"].replace("_", " ") in button.label
    button.click().run()
    slider = at.slider(key=f"slice_{study['study_key']}_{int(region.get('image') or 0)}")
    assert slider.value == int(region["slice"]) + 1 and slider.min == 1  # one-based
    # the region list: one-based slice, and the flag about the region
    assert any(f"slice {int(region['slice']) + 1}" in c.value and f"#{flag['id']}" in c.value for c in at.caption)


# ---------------------------------------------------------------- a laptop and a desktop screen (Chromium)
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _click_row(page, gb: dict, row: int, key: str, shot: str) -> None:
    """Click a cell of the grid's row ``row`` (a canvas: by position) and wait for its study; the grid may
    still be settling on a busy machine, so a click that opened nothing is tried once more."""
    for attempt in range(2):
        page.mouse.click(gb["x"] + gb["width"] * 0.3, gb["y"] + 35 + 35 * row + 17)
        try:
            page.get_by_text(f"Study {key}").wait_for(timeout=15000)
            return
        except Exception:  # noqa: BLE001 - playwright's TimeoutError: one more try, then the screenshot
            page.screenshot(path=os.path.join(ARTIFACTS, shot))
            if attempt:
                raise


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/usr/bin/chromium"), reason="Debian chromium not installed (.ci/run installs it)")
def test_layout_at_laptop_and_desktop_sizes(day_store, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    db = tmp_path / "ui.sqlite"
    shutil.copy(day_store / "a.sqlite", db)
    port = _free_port()
    env = dict(os.environ)
    env.pop("MEDMM_APP_CONFIG", None)
    server = subprocess.Popen([sys.executable, "-m", "medmm.cli", "app", "--config", str(day_store / "app.yaml"),
                               "--db", str(db), "--port", str(port), "--address", "127.0.0.1"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    os.makedirs(ARTIFACTS, exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    with Store(str(db)) as s:
        first = s.worklist()[0]
        flagged = [w for w in s.worklist() if w["n_flags"]][1]  # another row than the first
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.3)
        args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"]
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=args)
            for width, height in ((1366, 768), (1920, 1080)):
                page = browser.new_page(viewport={"width": width, "height": height})
                page.goto(url)
                page.get_by_role("textbox", name="User name").fill(USER)
                page.get_by_role("textbox", name="Password").fill(PASSWORD)
                page.get_by_role("button", name="Log in").click()
                page.get_by_text("Click a row to open the study").wait_for(timeout=30000)
                page.locator("[data-testid='stDataFrame'] canvas").first.wait_for(timeout=30000)
                page.wait_for_timeout(1500)
                page.screenshot(path=os.path.join(ARTIFACTS, f"day-{width}-worklist.png"))
                # a row opens its study: click the first data row of the grid
                grid = page.locator("[data-testid='stDataFrame']").first
                gb = grid.bounding_box()
                _click_row(page, gb, 0, first["study_key"], f"day-{width}-row-click.png")
                # the flagged study: its flag cards and their buttons fit the screen's width and height
                page.get_by_text("Back to the worklist").click()
                page.get_by_text("Click a row to open the study").wait_for(timeout=30000)
                page.locator("[data-testid='stDataFrame'] canvas").first.wait_for(timeout=30000)
                page.wait_for_timeout(1500)
                with Store(str(db)) as s:
                    rank = [w["study_key"] for w in s.worklist()].index(flagged["study_key"])
                _click_row(page, gb, rank, flagged["study_key"], f"day-{width}-row-click2.png")
                page.wait_for_timeout(800)
                page.screenshot(path=os.path.join(ARTIFACTS, f"day-{width}-study.png"))
                save = page.get_by_role("button", name="Save decision").first
                card = page.locator("[data-testid='stVerticalBlock']").filter(has=save).filter(has_text="current decision:").last
                card.scroll_into_view_if_needed()
                page.wait_for_timeout(300)
                page.screenshot(path=os.path.join(ARTIFACTS, f"day-{width}-flag-card.png"))
                cb, sb = card.bounding_box(), save.bounding_box()
                assert cb["height"] <= height * 0.6, (width, cb)  # a card is a fraction of the screen
                assert sb["x"] + sb["width"] <= width and cb["x"] + cb["width"] <= width + 1, (width, sb, cb)
                assert 0 <= sb["y"] and sb["y"] + sb["height"] <= height, (width, sb)
                nxt = page.get_by_role("button", name="Next unreviewed flag »")
                assert nxt.is_visible()
                shown = page.inner_text("body")
                for quoted in [page.locator(".medmm-report").first.inner_text()] + \
                        page.locator("[data-testid='stText']").all_inner_texts():
                    shown = shown.replace(quoted, "")  # the report's own words may say "None"
                assert "None" not in shown
                page.close()
            browser.close()
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
