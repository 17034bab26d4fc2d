"""A flag raised from the image by a VLM (issue 18 item 6): the flag card says the evidence is the image and
which model raised it, and the viewer draws the model's region (jumping to its slice) beside the sentence."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from medmm.app.auth import add_user
from medmm.app.evidence import evidence_line, region_boxes, region_target
from medmm.audit.runner import audit
from medmm.audit.store import Store
from medmm.regions.box import Box
from medmm.synth import SMALL, synthesize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP = os.path.join(ROOT, "apps", "report_checker.py")
USER, PASSWORD = "dr_vlm", "a-long-password"


def vlm_flag(report: str, slice_index: int) -> dict:
    """A hand-built VLM flag: its sentence (the first of the findings) and its decoded region on slice ``slice_index``."""
    start = report.index("FINDINGS:") + len("FINDINGS: ")
    end = report.index(".", start) + 1
    region = Box(4, 6, 20, 18, image=0, slice=slice_index, label="finding").to_dict()
    return {"id": 9001, "type": "laterality", "start": start, "end": end, "text": report[start:end],
            "explanation": "the model reads the other side", "confidence": 0.81, "evidence": "image",
            "model": "hf:runs/synth-checker/model", "region": region, "decision": None}


@pytest.fixture(autouse=True)
def _restore_main_module():
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture(scope="module")
def vlm_store(tmp_path_factory):
    d = tmp_path_factory.mktemp("vlm-app")
    synthesize(str(d / "syn"), 2, seed=5, kinds=("ct",), config=SMALL, workers=1)
    audit(str(d / "syn" / "manifest.jsonl"), str(d / "a.sqlite"), workers=1, progress=False)
    add_user(str(d / "users.yaml"), USER, "reviewer", PASSWORD)
    (d / "app.yaml").write_text("db: a.sqlite\nusers_file: users.yaml\nsession_timeout_minutes: 30\n")
    return d


def test_evidence_line_and_region_helpers(vlm_store):
    from medmm.app.views import draw_labelled
    from medmm.imaging import load_volume

    with Store(str(vlm_store / "a.sqlite")) as s:
        study = s.study(s.worklist()[0]["study_key"])
    flag = vlm_flag(study["report"], 1)
    assert evidence_line(flag) == "Evidence: the image, read by hf:runs/synth-checker/model; its region: image 1, slice 2"
    assert evidence_line({**flag, "evidence": "text"}) == ""
    assert "name not recorded" in evidence_line({**flag, "model": None})
    assert region_target(flag) == (0, 1)
    vol = load_volume(study["images"][0])
    assert region_boxes([flag], 0, 0, geometry=vol) == []  # another slice: nothing drawn
    [(box, label, focused)] = region_boxes([flag], 0, 1, geometry=vol, focus=9001)
    assert box.as_tuple() == (4, 6, 20, 18) and label == "#9001 laterality (model)" and focused
    img = np.zeros((40, 40), dtype=np.uint8)
    drawn = np.asarray(draw_labelled(img, [(box, label, focused)], min_side=40))
    assert (drawn[10:17, 4] == (255, 215, 0)).all()  # the focused flag's region, in yellow, on its left edge


def test_app_shows_the_model_and_its_region(vlm_store, monkeypatch, tmp_path):
    import shutil

    from streamlit.testing.v1 import AppTest

    db = tmp_path / "copy.sqlite"
    shutil.copy(vlm_store / "a.sqlite", db)
    with Store(str(db)) as s:
        key = s.worklist()[0]["study_key"]
        report = s.study(key)["report"]
    flag = vlm_flag(report, 1)
    original = Store.study

    def with_vlm_flag(self, study_key, *args, **kwargs):  # noqa: ANN001, ANN202 - the store's own signature
        out = original(self, study_key, *args, **kwargs)
        if out is not None and study_key == key:
            out = {**out, "flags": [*out["flags"], flag]}
        return out

    monkeypatch.setattr(Store, "study", with_vlm_flag)
    monkeypatch.setenv("MEDMM_APP_CONFIG", str(vlm_store / "app.yaml"))
    monkeypatch.setenv("MEDMM_APP_DB", str(db))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.text_input(key="login_user").input(USER)
    at.text_input(key="login_password").input(PASSWORD)
    at.button[0].click().run()
    at.session_state["study"] = key
    at.sidebar.radio(key="page").set_value("Study").run()
    assert not at.exception
    # the sentence is highlighted, the card names the evidence and the model
    assert any('data-flag="9001"' in m.value and flag["text"].split()[0] in m.value for m in at.markdown)
    shown = [c.value.replace("\\", "") for c in at.caption]  # captions are Markdown-escaped
    assert any("Evidence: the image, read by hf:runs/synth-checker/model; its region: image 1, slice 2" in c
               for c in shown)
    at.button(key="vlm_region_9001").click().run()
    assert not at.exception
    assert at.session_state["focus_flag"] == 9001
    assert at.slider(key=f"slice_{key}_0").value == 2  # the viewer is on the region's slice (one-based)
