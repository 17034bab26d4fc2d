"""Region boxes through the audit: manifest boxes are read as regions.Box JSON (frame explicit), kept
by the store, and placed by the app viewer; an unreadable box is that study's recorded problem."""

from __future__ import annotations

import json

from medmm.app.views import boxes_for
from medmm.audit.runner import audit, iter_inputs
from medmm.audit.store import Store
from medmm.regions import Box, Display

REPORT = "FINDINGS: There is a 12 mm nodule in the right upper lobe.\n\nIMPRESSION: Right upper lobe nodule."


def _manifest(tmp_path) -> str:
    good = {"study_id": "A1", "modality": "CT", "body_part": "CHEST", "sex": "F", "report": REPORT, "images": [],
            "findings": [{"type": "nodule", "boxes": [{"image": 0, "slice": 3, "x1": 4, "y1": 5, "x2": 9, "y2": 11}]}]}
    shown = Box(1, 2, 3, 4, frame=Display("coronal"), slice=7, label="mass")
    given = {"study_id": "A2", "report": REPORT, "regions": [shown.to_dict()]}
    bad = {"study_id": "A3", "report": REPORT, "findings": [{"type": "mass", "boxes": [{"image": 0, "x1": 4}]}]}
    path = tmp_path / "manifest.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in (good, given, bad)))
    return str(path)


def test_runner_reads_boxes_with_their_frame_and_records_unreadable_ones(tmp_path):
    items = {i.study_id: i for i in iter_inputs(_manifest(tmp_path))}
    (acq,) = [b.to_dict() for b in items["A1"].regions]
    assert acq == {"image": 0, "slice": 3, "x1": 4, "y1": 5, "x2": 9, "y2": 11, "frame": "acquisition", "label": "nodule"}
    (disp,) = [b.to_dict() for b in items["A2"].regions]
    assert Box.from_dict(disp) == Box(1, 2, 3, 4, frame=Display("coronal"), slice=7, label="mass")
    assert items["A3"].problem.startswith("a region box cannot be read") and not items["A3"].regions


def test_store_keeps_boxes_the_app_viewer_places(tmp_path):
    db = str(tmp_path / "a.sqlite")
    summary = audit(_manifest(tmp_path), db, workers=1, progress=False)
    assert (summary.studies, summary.failures) == (2, 1)  # the study with an unreadable box is recorded as failed
    with Store(db) as s:
        regions = sorted((s.study(w["study_key"])["regions"] for w in s.worklist()), key=lambda r: r[0]["frame"] if r else "")
    acquired, shown = [r for r in regions if r]
    assert acquired == [{"image": 0, "slice": 3, "x1": 4, "y1": 5, "x2": 9, "y2": 11, "frame": "acquisition",
                         "label": "nodule"}]
    assert Box.from_dict(shown[0]).frame == Display("coronal")
    assert boxes_for(acquired, 0, 3) == [Box(4, 5, 9, 11, slice=3, label="nodule")]
    assert boxes_for(acquired, 0, 4) == []


def test_record_regions_forms():
    from medmm.errors import InputError
    from medmm.regions import record_regions

    import pytest

    synth = {"findings": [{"type": "cyst", "boxes": [{"image": 1, "slice": None, "x1": 0, "y1": 1, "x2": 2, "y2": 3}]},
                          {"type": "mass", "boxes": []}]}
    assert record_regions(synth) == ({"image": 1, "slice": None, "x1": 0, "y1": 1, "x2": 2, "y2": 3,
                                      "frame": "acquisition", "label": "cyst"},)
    given = {"regions": [Box(0, 0, 5, 5, frame=Display("sagittal"), slice=2).to_dict()], "findings": synth["findings"]}
    assert [Box.from_dict(r).frame for r in record_regions(given)] == [Display("sagittal")]  # given regions win
    assert record_regions({}) == ()
    with pytest.raises(InputError, match="not a box"):
        record_regions({"regions": ["0,0,5,5"]})
