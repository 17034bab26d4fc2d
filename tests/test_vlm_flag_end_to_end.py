"""Each link of issue 18 item 6 on a real (tiny) model: the VLM checker raises a flag that names its model and the
region its COMPLEX answer gives -> the flag is stored (schema v9) -> reloaded -> the review app's helpers say the
evidence is the image, which model raised it, and draw the region; a stored conflict flag highlights both spans."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import pytest

from medmm.app.evidence import evidence_line, is_image_flag, region_boxes, region_target
from medmm.app.views import highlight
from medmm.audit.store import Store, StudyRecord
from medmm.reports.checker import default_checker
from medmm.regions.box import Box
from medmm.runs import RunConfig


@pytest.fixture(scope="module")
def cxr(tmp_path_factory):
    from medmm.synth import SMALL, synthesize

    d = tmp_path_factory.mktemp("vlm-e2e")
    synthesize(str(d), 4, seed=7, kinds=("cxr",), config=SMALL, workers=1)
    for line in open(d / "manifest.jsonl", encoding="utf-8"):
        rec = json.loads(line)
        boxes = [b for f in rec["findings"] for b in f.get("boxes") or [] if b.get("slice") is None]
        if boxes:  # a radiograph with a finding: its truth box is what a trained checker answers
            image = os.path.join(str(d), rec["images"][0]["path"])
            return {"dir": d, "report": rec["report"], "image": image, "box": boxes[0]}
    raise AssertionError("no synthetic radiograph with a finding box")


@pytest.fixture(scope="module")
def tiny():
    import torch

    from medmm.models.tiny import build_tiny

    torch.manual_seed(0)
    return build_tiny("llava")


def _answer_with_box(model, view_size, box: dict) -> str:
    """What a trained checker answers to COMPLEX (medmm.checkertrain.tasks): type, sentence, the box in its codec."""
    from medmm.models.families import family_of
    from medmm.regions.codecs import RefBoxes

    fam = family_of(model)
    t = fam.input_transform(model.processor.image_processor, *view_size)
    b = Box.from_dict(box).to_model(t).as_tuple()
    return 'laterality: "Right pleural effusion." ' + fam.codec().encode([RefBoxes("region", (b,))], t.size)


def test_decode_region_inverts_the_training_box(tiny, cxr):
    from medmm.reports.checker_views import checker_images
    from medmm.reports.vlm_region import decode_region

    [view] = checker_images([cxr["image"]])
    region = decode_region(tiny, _answer_with_box(tiny, view.size, cxr["box"]), view.size)
    got = Box.from_dict(region)
    want = Box.from_dict(cxr["box"])
    assert region["image"] == 0 and region["frame"] == "acquisition" and region["label"] == "region"
    assert max(abs(a - b) for a, b in zip(got.as_tuple(), want.as_tuple())) <= 2  # the codec's rounding
    assert decode_region(tiny, "laterality: no box here", view.size) is None
    assert decode_region(object(), "anything", view.size) is None  # no image processor (an http: server)


def _checker(model, monkeypatch=None, answer=None):
    from medmm.reports.vlm_checker import VLMCheckerConfig
    from medmm.reports.vlm_run import VLMChecker

    cfg = replace(VLMCheckerConfig.load(), threshold=-1e6)  # every report judged erroneous: a flag to follow
    if monkeypatch is not None and answer is not None:  # the trained model's COMPLEX answer, on the real model object
        from medmm.models.base import Generation

        monkeypatch.setattr(model, "generate", lambda reqs, max_new_tokens=64, **kw: [
            Generation(answer, 0, 0, 0.0, "stop") for _ in reqs])
    return VLMChecker("vlm", model, config=cfg)


def test_vlm_flag_to_store_to_app(tiny, cxr, monkeypatch, tmp_path):
    from medmm.imaging import load_volume
    from medmm.reports.checker_views import checker_images

    [view] = checker_images([cxr["image"]])
    checker = _checker(tiny, monkeypatch, _answer_with_box(tiny, view.size, cxr["box"]))
    result = checker.check(cxr["report"], None, images=[cxr["image"]])
    [flag] = result.flags
    assert flag.evidence == "image" and flag.model.startswith("tiny:llava @")
    assert flag.region is not None and flag.region["image"] == 0
    printed = result.as_dict()["flags"][0]  # what `medmm check --json` prints
    assert printed["model"] == flag.model and printed["region"] == flag.region
    # -> the store, -> reloaded
    db = str(tmp_path / "a.sqlite")
    with Store(db) as s:
        run_id, key = s.start_run(RunConfig.build("audit", checker="vlm", model=flag.model))
        s.record_result(run_id, key, StudyRecord("study-1", None, {"modality": "DX"}, cxr["report"],
                                                 images=(cxr["image"],)), result)
    with Store(db) as s:
        study = s.study(s.study_key("study-1"))
        assert s.verify().ok
    [stored] = study["flags"]
    assert stored["model"] == flag.model and stored["region"] == flag.region and is_image_flag(stored)
    # -> the app's helpers on the STORED flag
    assert evidence_line(stored) == f"Evidence: the image, read by {flag.model}; its region: image 1"
    assert region_target(stored) == (0, None)
    vol = load_volume(study["images"][0])
    [(box, label, focused)] = region_boxes(study["flags"], 0, 0, geometry=vol, focus=stored["id"])
    assert focused and label == f"#{stored['id']} {stored['type']} (model)"
    assert box.as_tuple() == Box.from_dict(flag.region).as_tuple()
    html = highlight(study["report"], study["flags"])
    assert f'data-flag="{stored["id"]}"' in html


def test_untrained_model_flag_names_the_model_without_a_region(tiny, cxr):
    """The real generate path: an untrained tiny model answers no box, so the flag has no region (and says so)."""
    [flag] = _checker(tiny).check(cxr["report"], None, images=[cxr["image"]]).flags
    assert flag.model and flag.region is None
    assert evidence_line(flag.as_dict()).startswith(f"Evidence: the image, read by {flag.model}")


def test_a_stored_conflict_flag_highlights_both_spans(tmp_path):
    report = ("FINDINGS: There is a small right pleural effusion. The heart is normal.\n\n"
              "IMPRESSION: Small left pleural effusion.")
    result = default_checker(None).check(report, None)
    conflict = [f for f in result.flags if f.related]
    assert conflict, [f.as_dict() for f in result.flags]
    db = str(tmp_path / "r.sqlite")
    with Store(db) as s:
        run_id, key = s.start_run(RunConfig.build("audit", checker="rules"))
        s.record_result(run_id, key, StudyRecord("s", None, {"modality": "CR"}, report), result)
    with Store(db) as s:
        study = s.study(s.study_key("s"))
    stored = next(f for f in study["flags"] if f["related"])
    f = conflict[0]
    assert (stored["start"], stored["end"]) == (f.start, f.end)
    assert [(r["start"], r["end"]) for r in stored["related"]] == [(r.start, r.end) for r in f.related]
    html = highlight(study["report"], study["flags"])
    assert html.count(f'data-flag="{stored["id"]}"') >= 2 and "flag-related" in html  # both sides marked


def test_check_cli_hands_the_image_to_the_vlm_and_prints_its_model(cxr, tmp_path, monkeypatch, capsys):
    from medmm.cli import main
    from medmm.reports import vlm_run

    seen = []
    real = vlm_run.images_for

    def recording(images, *args, **kwargs):  # noqa: ANN001, ANN202 - vlm_run.images_for's own signature
        seen.append(list(images or []))
        return real(images, *args, **kwargs)

    monkeypatch.setattr(vlm_run, "images_for", recording)
    report = tmp_path / "r.txt"
    report.write_text(cxr["report"], encoding="utf-8")
    assert main(["check", str(report), "--checker", "vlm", "--model", "tiny:llava", "--image", cxr["image"],
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert seen == [[cxr["image"]]]  # the VLM was given the study's image (before, `medmm check` ran it blind)
    assert all(f["model"].startswith("tiny:llava @") for f in out["flags"] if f["evidence"] == "image")


def test_the_region_names_the_study_image_the_view_came_from(tiny, cxr, monkeypatch, tmp_path):
    """A study listing a lateral first: the checker looks at the frontal (checker_views), so the region is on the
    frontal's index — the one the app draws it on."""
    import pydicom

    from medmm.reports.checker_views import checker_images

    ds = pydicom.dcmread(cxr["image"])
    ds.ViewPosition = "LL"
    lateral = str(tmp_path / "lateral.dcm")
    ds.save_as(lateral)
    [view] = checker_images([lateral, cxr["image"]])
    checker = _checker(tiny, monkeypatch, _answer_with_box(tiny, view.size, cxr["box"]))
    [flag] = checker.check(cxr["report"], None, images=[lateral, cxr["image"]]).flags
    assert flag.region is not None and flag.region["image"] == 1
    assert region_target(flag.as_dict()) == (1, None)
