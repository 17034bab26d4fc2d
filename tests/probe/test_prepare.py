"""``medmm probe prepare``: counts against the published figures, missing images by id, checksums, the
manifest the runner reads, and clear errors for a wrong layout (small fake downloads)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from medmm.cli import main
from medmm.errors import InputError
from medmm.probe.prepare import MEDICONFUSION_PUBLISHED, prepare, read_manifest
from medmm.probe.runner import run_probe

from .conftest import FakeVLM


def _png(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(path)


def fake_probmed(root, with_missing=True):
    qs = []
    for k, (itype, name) in enumerate((("ct scan_abdomen", "img/a.png"), ("mri_brain", "img/b.png"),
                                       ("mri_brain", "img/c.png"))):
        for qa, ans in (("modality_gt", "yes"), ("modality_hallu", "no"), ("abnormality", "no"),
                        ("entity_gt_0", "yes"), ("entity_hallu_0", "no")):
            qs.append({"id": k, "image": name, "image_type": itype, "qa_type": qa, "question": f"{qa}? (please answer "
                       "yes/no)", "answer": ans})
        if not (with_missing and name == "img/c.png"):
            _png(root / name)
    (root / "probmed.json").write_text(json.dumps(qs))
    return root


def test_probmed_counts_missing_images_and_manifest(tmp_path, capsys):
    root = fake_probmed(tmp_path / "dl")
    prepared, path = prepare("probmed", str(root))
    assert prepared.counts["images"] == 3 and prepared.counts["questions"] == 15
    assert prepared.counts["images_per_image_type"] == {"ct scan_abdomen": 1, "mri_brain": 2}
    assert prepared.counts["questions_per_question_type"] == {"abnormality": 3, "entity_gt": 3, "entity_hallu": 3,
                                                              "modality_gt": 3, "modality_hallu": 3}
    assert prepared.missing_images == {"2": ["img/c.png"]}  # by id
    assert not prepared.ok and any("6,303 published" in p for p in prepared.problems)
    assert prepared.checksums["probmed.json"]["match"] is None  # ProbMed publishes no checksum
    manifest = read_manifest(path)
    assert manifest["bench"] == "negation" and manifest["counts"]["questions"] == 15 and manifest["ok"] is False
    # the CLI prints the comparison; --strict makes a mismatch an exit status
    assert main(["probe", "prepare", "probmed", "--root", str(root)]) == 0
    err = capsys.readouterr().err
    assert "images: 3 (published 6,303)" in err and "questions: 15 (published 57,132)" in err and "missing images" in err
    assert main(["probe", "prepare", "probmed", "--root", str(root), "--strict"]) == 1


def test_the_runner_reads_the_manifest(tmp_path):
    root = fake_probmed(tmp_path / "dl", with_missing=False)
    _, path = prepare("probmed", str(root), out=str(tmp_path / "prep"))
    r = run_probe("negation", path, FakeVLM(), str(tmp_path / "run"), progress=False)
    assert r.n_samples == 15 and r.n_failed == 0
    with pytest.raises(InputError, match="not confusion"):
        run_probe("confusion", path, FakeVLM(), str(tmp_path / "run2"), progress=False)


def test_wrong_layouts_get_clear_errors(tmp_path):
    with pytest.raises(InputError, match="no such folder"):
        prepare("probmed", str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no ProbMed question file found"):
        prepare("probmed", str(tmp_path / "empty"))
    with pytest.raises(InputError, match="no MediConfusion question file found"):
        prepare("mediconfusion", str(tmp_path / "empty"))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "probmed.json").write_text(json.dumps({"not": "a list"}))
    with pytest.raises(InputError, match="expected a JSON array"):
        prepare("probmed", str(tmp_path / "bad"))
    with pytest.raises(InputError, match="unknown benchmark"):
        prepare("vqa-rad", str(tmp_path / "bad"))


def test_mediconfusion_counts_checksum_and_missing_images(tmp_path, shared_data):
    root = tmp_path / "MediConfusion"
    (root / "data" / "images").mkdir(parents=True)
    shutil.copy(shared_data / "mediconfusion" / "dataset.json", root / "data" / "dataset.json")
    records = json.loads((root / "data" / "dataset.json").read_text())
    first = next(iter(records.values()))
    for slot in (1, 2):  # only the first pair's two images are present
        _png(root / "data" / "images" / f"{first[f'im_{slot}_local']}.jpg")
    prepared, _ = prepare("mediconfusion", str(root))
    assert prepared.counts["pairs"] == 176
    assert prepared.counts["category_occurrences"] == MEDICONFUSION_PUBLISHED["category_occurrences"]
    assert prepared.checksums["dataset.json"]["match"] is True
    pids_with_first = {pid for pid, r in records.items()
                       if {r["im_1_local"], r["im_2_local"]} <= {first["im_1_local"], first["im_2_local"]}}
    assert set(prepared.missing_images) == set(records) - pids_with_first and prepared.problems == []
    # a changed dataset.json: the checksum and the counts say so
    del records[next(iter(records))]
    (root / "data" / "dataset.json").write_text(json.dumps(records))
    changed, _ = prepare("mediconfusion", str(root))
    assert changed.checksums["dataset.json"]["match"] is False and changed.counts["pairs"] == 175
    assert any("175 found, 176 published" in p for p in changed.problems)
    # no image at all: said plainly
    shutil.rmtree(root / "data" / "images")
    bare, _ = prepare("mediconfusion", str(root))
    assert any("no image of any pair" in p for p in bare.problems)
