"""scripts/medpix_ct_mr.py on made-up cases in MedPix 2.0's Case_topic.json / Descriptions.json layout (no MedPix
text here)."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _script():  # noqa: ANN202 - the converter is a script, not a package module
    spec = importlib.util.spec_from_file_location("medpix_ct_mr", ROOT / "scripts" / "medpix_ct_mr.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _case(uid: str, findings: str | None, ct: bool = True, mr: bool = False) -> dict:
    return {"U_id": uid, "TAC": [f"{uid}_a"] if ct else [], "MRI": [f"{uid}_b"] if mr else [],
            "Case": {"Title": "Made-up", "Findings": findings}}


def _image(uid: str, category: str, kind: str = "CT") -> dict:
    return {"U_id": uid, "Type": kind, "image": f"{uid}_a", "Location Category": category}


def test_one_modality_cases_are_kept_with_their_header():
    dropped: Counter = Counter()
    rows = _script().convert(
        [_case("MPX1", "A made-up 2 cm cyst in the left kidney, no hydronephrosis."),
         _case("MPX2", "A made-up lesion with restricted diffusion in the right frontal lobe.", ct=False, mr=True),
         _case("MPX3", "Made-up findings seen on both kinds of images here.", ct=True, mr=True),
         _case("MPX4", "N/A"),
         _case("MPX5", "PA chest radiograph shows a made-up opacity; CT shows a made-up mass."),
         _case("MPX6", "T2 FLAIR hyperintensity, made up, in a case with CT images only."),
         _case("MPX7", "A made-up  2 cm cyst in the left kidney,\nno hydronephrosis."),
         _case("MPX8", "Thanks to us the made-up mass is seen in the liver segment 4.")],
        [_image("MPX1", "Abdomen"), _image("MPX2", "Head", "MR"), _image("MPX8", "Abdomen"),
         _image("MPX8", "Thorax")], dropped)
    assert [(r["id"], r["header"]) for r in rows] == [
        ("mpx1", {"modality": "CT", "body_part": "ABDOMEN"}), ("mpx2", {"modality": "MR", "body_part": "HEAD"}),
        ("mpx8", {"modality": "CT"})]  # two body-part categories: none named; lower-case "us" is not ultrasound
    assert rows[0]["text"] == "A made-up 2 cm cyst in the left kidney, no hydronephrosis."
    assert dropped == Counter({"CT and MR images (or none): findings mix studies": 1, "no findings text": 1,
                               "findings name another modality": 2, "same findings as an earlier case": 1})


def test_main_writes_one_file_per_modality(tmp_path):
    cases = tmp_path / "Case_topic.json"
    cases.write_text(json.dumps([_case("MPX1", "A made-up 2 cm cyst in the left kidney, no hydronephrosis."),
                                 _case("MPX2", "A made-up lesion with restricted diffusion in the pons.", False,
                                       True)]), encoding="utf-8")
    images = tmp_path / "Descriptions.json"
    images.write_text(json.dumps([_image("MPX1", "Abdomen")]), encoding="utf-8")
    assert _script().main([str(cases), str(images), str(tmp_path / "out")]) == 0
    ct = [json.loads(x) for x in (tmp_path / "out" / "medpix_ct.jsonl").read_text(encoding="utf-8").splitlines()]
    mr = [json.loads(x) for x in (tmp_path / "out" / "medpix_mr.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in ct] == ["mpx1"] and [r["id"] for r in mr] == ["mpx2"]
    assert mr[0]["source"] == "medpix2" and "body_part" not in mr[0]["header"]
