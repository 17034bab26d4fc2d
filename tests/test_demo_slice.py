"""The demo's slice bug is gone: the demo renders a truth box of a coronal MR and of a feet-first CT
on the slice that holds it, and the lesion's label lies inside the drawn box.

Manifest boxes count slices in position order (acquisition); ``medmm render --slice`` counts
display slices of a view. The demo used to pass one as the other, which agrees only for a
head-first axial series. The check here is independent of the converters: the label map is
rendered through the same view code as the image and searched inside the drawn rectangle.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medmm.cli import main as cli
from medmm.demo import finding_view_args
from medmm.imaging import load_nifti, load_volume
from medmm.imaging.views import plane
from medmm.synth import SMALL, make_study


@pytest.fixture(scope="module")
def studies(tmp_path_factory) -> tuple[Path, list[dict]]:
    out = tmp_path_factory.mktemp("demo_slice")
    cfg = replace(SMALL, ct_feet_first_fraction=1.0, mr_coronal_fraction=1.0, normal_fraction=0.0)
    records = [make_study(str(out), 11, i, kind, cfg) for i, kind in enumerate(("ct", "mr", "ct", "mr"))]
    return out, records


def _render(args: list[str], capsys) -> list[dict]:
    capsys.readouterr()
    assert cli(args) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.parametrize("kind", ["feet-first CT", "coronal MR"])
def test_demo_renders_the_truth_box_slice_with_the_lesion_inside(studies, kind, tmp_path, capsys):
    out, records = studies
    modality = "CT" if kind.endswith("CT") else "MR"
    checked = 0
    for rec in (r for r in records if r["modality"] == modality):
        series = str(out / rec["images"][0]["path"])
        vol = load_volume(series)
        labels = load_nifti(str(out / rec["images"][0]["label_map"]))
        for f in rec["findings"]:
            png = tmp_path / f"{rec['study_id']}-{f['label']}.png"
            (shown,) = _render(["render", series, "--window", "auto", *finding_view_args(f), "--out", str(png)], capsys)
            assert shown["frame"] == "display"
            assert shown["axis"] == ("axial" if modality == "CT" else "coronal")
            lab = plane(labels, shown["slice"], shown["axis"])
            inside = lab[shown["y1"]:shown["y2"], shown["x1"]:shown["x2"]]
            assert (inside == f["label"]).any(), (kind, f["type"], shown)
            # the PNG is the same plane with the rectangle drawn on its edge
            img = np.asarray(Image.open(png).convert("RGB"))
            assert img.shape[:2] == lab.shape == plane(vol, shown["slice"], shown["axis"]).shape
            top = img[shown["y1"], shown["x1"]:shown["x2"]]
            assert (top == (255, 0, 0)).all()
            checked += 1
    assert checked >= 2


def test_passing_the_acquired_slice_as_a_display_slice_would_miss(studies):
    """The old demo (``--slice <manifest slice>`` on an axial view) misses the lesion on these
    series, so the test above can tell the bug from the fix."""
    out, records = studies
    misses = {"CT": 0, "MR": 0}
    for rec in records:
        labels = load_nifti(str(out / rec["images"][0]["label_map"]))
        for f in rec["findings"]:
            box = f["boxes"][len(f["boxes"]) // 2]
            if box["slice"] >= plane_count(labels):
                misses[rec["modality"]] += 1  # the old command failed outright: no such axial slice
                continue
            lab = plane(labels, box["slice"], "axial")
            h, w = lab.shape
            inside = lab[min(box["y1"], h):min(box["y2"], h), min(box["x1"], w):min(box["x2"], w)]
            misses[rec["modality"]] += not (inside == f["label"]).any()
    assert misses["CT"] > 0 and misses["MR"] > 0


def plane_count(volume) -> int:
    from medmm.regions import Geometry

    return Geometry.of(volume).view_size("axial")[2]


def test_render_acquired_slice_and_box_errors(studies, tmp_path, capsys):
    out, records = studies
    mr = next(r for r in records if r["modality"] == "MR")
    series = str(out / mr["images"][0]["path"])
    vol = load_volume(series)
    k = vol.shape[2] - 1
    png = tmp_path / "acq.png"
    assert cli(["render", series, "--acquired-slice", str(k), "--window", "auto", "--out", str(png)]) == 0
    assert "coronal slice" in capsys.readouterr().err
    # the acquired plane k, as the app's viewer shows it, is the coronal display plane (columns and rows agree here)
    from medmm.app.views import acquisition_slice
    from medmm.imaging.views import render

    box = json.dumps({"image": 0, "slice": k, "x1": 0, "y1": 0, "x2": 1, "y2": 1})
    (shown,) = _render(["render", series, "--box-json", box, "--out", str(tmp_path / "b.png")], capsys)
    assert np.array_equal(np.asarray(Image.open(png)), render(vol, "auto", shown["slice"], "coronal"))
    assert acquisition_slice(vol, k, "auto").shape == np.asarray(Image.open(png)).shape
    assert cli(["render", series, "--box-json", "{not json", "--out", str(tmp_path / "x.png")]) != 0
    assert "--box-json is not JSON" in capsys.readouterr().err
    assert cli(["render", series, "--box-json", box, "--slice", str(shown["slice"] + 1),
                "--out", str(tmp_path / "x.png")]) != 0
    assert "not the box's coronal display slice" in capsys.readouterr().err
