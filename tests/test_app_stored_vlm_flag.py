"""The review app on STORED flags (store v9), nothing hand-built in the page: a VLM flag's card says the evidence
is the image and which model raised it, its region button points the viewer at it, and a stored conflict flag
marks both of its spans (issue 18 item 6, issue 21 item 3)."""

from __future__ import annotations

import os
import sys

import pytest

from medmm.app.auth import add_user
from medmm.audit.store import Store, StudyRecord
from medmm.reports.flags import CheckResult, Flag, Span
from medmm.runs import RunConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP = os.path.join(ROOT, "apps", "report_checker.py")
USER, PASSWORD = "dr_stored", "a-long-password"
MODEL = "hf:runs/synth-checker/model @0123456789ab"


@pytest.fixture(autouse=True)
def _restore_main_module():
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture()
def stored(tmp_path):
    import json

    from medmm.synth import SMALL, synthesize

    synthesize(str(tmp_path / "syn"), 1, seed=11, kinds=("cxr",), config=SMALL, workers=1)
    rec = json.loads(open(tmp_path / "syn" / "manifest.jsonl", encoding="utf-8").readline())
    image = os.path.realpath(os.path.join(tmp_path / "syn", rec["images"][0]["path"]))
    report = ("FINDINGS: Small right pleural effusion. The heart is normal.\n\n"
              "IMPRESSION: Small left pleural effusion.")
    s1 = report.index("Small right")
    e1 = report.index(".", s1) + 1
    s2 = report.index("Small left")
    e2 = report.index(".", s2) + 1
    s3 = report.index("The heart")
    e3 = report.index(".", s3) + 1  # a sentence of its own (overlapping marks: the first wins in the page)
    vlm = Flag("finding", s3, e3, report[s3:e3], "the VLM reads an enlarged heart; evidence: the image", 0.81, "image",
               "vlm", model=MODEL, region={"image": 0, "slice": None, "x1": 4, "y1": 6, "x2": 20, "y2": 18,
                                           "frame": "acquisition", "label": "region"})
    conflict = Flag("laterality", s2, e2, report[s2:e2], "sides conflict", 0.9, "text", "side_conflict",
                    (Span(s1, e1, report[s1:e1]),))
    db = str(tmp_path / "a.sqlite")
    with Store(db) as s:
        run_id, key = s.start_run(RunConfig.build("audit", checker="ensemble", model=MODEL))
        s.record_result(run_id, key, StudyRecord("study-1", None, {"modality": "DX"}, report, images=(image,)),
                        CheckResult(True, 0.9, [vlm, conflict], "ensemble"))
        study_key = s.study_key("study-1")
        flags = {f["evidence"]: f["id"] for f in s.study(study_key)["flags"]}
    add_user(str(tmp_path / "users.yaml"), USER, "reviewer", PASSWORD)
    (tmp_path / "app.yaml").write_text("db: a.sqlite\nusers_file: users.yaml\nsession_timeout_minutes: 30\n")
    return tmp_path, db, study_key, flags


def test_app_shows_a_stored_vlm_flag_and_both_sides_of_a_stored_conflict(stored, monkeypatch):
    from streamlit.testing.v1 import AppTest

    folder, db, key, flags = stored
    monkeypatch.setenv("MEDMM_APP_CONFIG", str(folder / "app.yaml"))
    monkeypatch.setenv("MEDMM_APP_DB", db)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.text_input(key="login_user").input(USER)
    at.text_input(key="login_password").input(PASSWORD)
    at.button[0].click().run()
    at.session_state["study"] = key
    at.sidebar.radio(key="page").set_value("Study").run()
    assert not at.exception
    shown = [c.value.replace("\\", "") for c in at.caption]  # captions are Markdown-escaped
    assert any(f"Evidence: the image, read by {MODEL}; its region: image 1" in c for c in shown), shown
    page = "".join(m.value for m in at.markdown)
    conflict = flags["text"]
    assert page.count(f'data-flag="{conflict}"') >= 2 and "flag-related" in page  # both sides of the stored conflict
    at.button(key=f"vlm_region_{flags['image']}").click().run()
    assert not at.exception
    assert at.session_state["focus_flag"] == flags["image"]
