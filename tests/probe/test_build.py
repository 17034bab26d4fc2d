"""Building negation pairs and mining confusion pairs from annotated collections."""

from __future__ import annotations

import csv
import json
import random

import numpy as np
import pytest
from PIL import Image

from medmm.errors import ConfigError, InputError
from medmm.probe.build import absent_findings, build_negation, wrong_location
from medmm.probe.collection import AnnotatedImage, Finding, Vocabulary
from medmm.probe.confusion import read_dataset
from medmm.probe.mine import PixelEncoder, cosine_matrix, mine_confusion, select_pairs
from medmm.probe.negation import QAType, read_questions


def _words(text):
    return set(text.lower().split())


def test_negation_from_synthetic_manifest(synth_small, tmp_path):
    manifest = synth_small / "manifest.jsonl"
    out = tmp_path / "neg.json"
    r = build_negation(manifest, out, seed=3)
    qs = read_questions(out)
    assert r.n_images == 12 and r.n_questions == len(qs)
    text = lambda path: [(q.id, q.qa_type, q.question, q.answer) for q in read_questions(path)]  # noqa: E731
    build_negation(manifest, tmp_path / "again.json", seed=3)
    assert text(tmp_path / "again.json") == text(out)                 # seeded: the same questions
    build_negation(manifest, tmp_path / "other.json", seed=4)
    assert text(tmp_path / "other.json") != text(out)

    vocab = Vocabulary.load()
    studies = {json.loads(l)["study_id"]: json.loads(l) for l in manifest.read_text().splitlines()}
    by_image: dict = {}
    for q in qs:
        by_image.setdefault(q.id, []).append(q)
    for sid, questions in by_image.items():
        study = studies[sid]
        kinds = {q.qa_type: q for q in questions}
        assert {"modality_gt", "modality_hallu", "body_part_gt", "body_part_hallu", "abnormality"} <= set(kinds)
        assert all(q.answer == ("no" if "hallu" in q.qa_type else q.answer) for q in questions)
        assert all(q.answer == "yes" for q in questions if "_gt" in q.qa_type)
        assert kinds["modality_hallu"].question != kinds["modality_gt"].question
        lesion_types = {f["type"] for f in study["findings"] if f["category"] == "lesion"}
        if "entity_hallu" in kinds:                                   # lone made-up finding: normal images only
            assert kinds["abnormality"].answer == "no"
            assert not any(QAType.parse(q.qa_type).side == "gt" and q.qa_type.startswith("entity") for q in questions)
        for q in questions:
            k = QAType.parse(q.qa_type)
            if k.category == "condition" and k.side in ("hallu", "lone"):
                hallucinated = q.extra["attribute"]
                assert not any(t in _words(hallucinated) for t in lesion_types), (sid, hallucinated)
            if k.category == "position" and k.side == "hallu":
                same = [f["location"] for f in study["findings"]
                        if vocab.finding_name(f["type"]) == q.extra["finding"]]
                assert same and q.extra["attribute"] not in same
        img = Image.open(tmp_path / questions[0].image)
        for q in questions:
            if q.extra.get("box"):
                x1, y1, x2, y2 = q.extra["box"]
                assert 0 <= x1 < x2 <= img.width and 0 <= y1 < y2 <= img.height
    assert any("grounding_hallu_0" == q.qa_type for q in qs)


def test_negation_from_csv_collection(tmp_path):
    for name in ("a", "b"):
        Image.fromarray(np.full((32, 32), 90, np.uint8)).save(tmp_path / f"{name}.png")
    with open(tmp_path / "images.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "modality", "body_part", "findings", "positions"])
        w.writerow(["a.png", "CT", "abdomen", "renal cyst;free fluid", "left kidney;"])
        w.writerow(["b.png", "x-ray", "chest", "", ""])
    out = tmp_path / "sub" / "neg.json"
    build_negation(tmp_path / "images.csv", out, seed=0)
    qs = read_questions(out)
    a = {q.qa_type: q for q in qs if q.id == "a"}
    assert a["grounding_gt_0"].question == ("In the given abdomen ct scan, is renal cyst present in the left kidney? "
                                            "(please answer yes/no)")
    assert a["grounding_hallu_0"].extra["attribute"] == "right kidney"   # the wrong side first
    assert "grounding_gt_1" not in a                                       # free fluid has no position
    assert a["modality_gt"].image_type == "ct scan_abdomen"
    assert a["modality_gt"].image == "../a.png"                            # relative to the question file
    b = {q.qa_type: q for q in qs if q.id == "b"}
    assert b["modality_gt"].question == "Is this an X-ray? (please answer yes/no)"
    assert b["abnormality"].answer == "no" and "entity_hallu" in b
    with open(tmp_path / "bad.csv", "w") as fh:
        fh.write("image,modality,body_part\na.png,ultrasonic,chest\n")
    with pytest.raises(InputError, match="modality 'ultrasonic' is not in the vocabulary"):
        build_negation(tmp_path / "bad.csv", tmp_path / "x.json")


def test_wrong_location_rules():
    rng = random.Random(0)
    chest = Vocabulary.load().body_parts["chest"]["locations"]
    f = Finding("nodule", "left upper lobe")
    assert wrong_location(f, ["left upper lobe"], chest, rng) in ("right upper lobe", "left lower lobe")
    # the other side holds a nodule too: only the lobe swap is left
    assert wrong_location(f, ["left upper lobe", "right upper lobe"], chest, rng) == "left lower lobe"
    # bilateral: never either side of the same place
    eff = Finding("pleural effusion", "bilateral pleural space")
    for seed in range(20):
        loc = wrong_location(eff, ["bilateral pleural space"], chest, random.Random(seed))
        assert "pleural space" not in loc
    img = AnnotatedImage("x", "x.png", "CT", "chest", (Finding("pulmonary nodule"), Finding("pleural effusion")), False)
    assert not {"pulmonary nodule", "pleural effusion"} & set(absent_findings(img, Vocabulary.load()))


def test_vocabulary_is_validated(tmp_path):
    p = tmp_path / "v.yaml"
    p.write_text("modalities: {}\nbody_parts: {chest: {alternatives: [belly], colour: red}}\nfinding_names: {}\n"
                 "templates: {}\nextra: 1\n")
    with pytest.raises(ConfigError) as info:
        Vocabulary.load(p)
    msg = str(info.value)
    assert "unknown key 'extra'" in msg and "'colour'" in msg and "'belly' is not a body part" in msg


def test_select_pairs_by_hand():
    labels = ["nodule", "nodule", "mass", "normal"]
    sem = np.array([[1, .9, .95, .2], [.9, 1, .3, .85], [.95, .3, 1, .4], [.2, .85, .4, 1]])
    vis = np.array([[1, .1, .2, .9], [.1, 1, .8, .3], [.2, .8, 1, .5], [.9, .3, .5, 1]])
    # thresholds: semantic >= .8, visual <= .5, labels differ -> (0,2) sem .95 vis .2 and (1,3) sem .85 vis .3;
    # (0,1) has equal labels. Each image once.
    got = select_pairs(labels, sem, vis, min_semantic=0.8, max_visual=0.5)
    assert [(p.i, p.j) for p in got] == [(0, 2), (1, 3)]
    assert [(p.i, p.j) for p in select_pairs(labels, sem, vis, 0.8, 0.5, max_pairs=1)] == [(0, 2)]
    # default (ranks): sem ranks of the 6 pairs: .2->0 .3->.2 .4->.4 .85->.6 .9->.8 .95->1; vis ranks: .1->0 .2->.2
    # .3->.4 .5->.6 .8->.8 .9->1. (0,2): 1 - .2 = .8; (1,3): .6 - .4 = .2; (0,3): sem rank 0 -> out.
    assert [(p.i, p.j) for p in select_pairs(labels, sem, vis)] == [(0, 2), (1, 3)]
    assert cosine_matrix(np.array([[1.0, 0.0], [0.0, 2.0]]))[0, 1] == pytest.approx(0.0)


def test_mine_confusion_from_synthetic(synth_small, tmp_path):
    out = tmp_path / "conf.json"
    r = mine_confusion(synth_small / "manifest.jsonl", out, seed=0)
    pairs = read_dataset(out)
    assert r.n_pairs == len(pairs) >= 1
    raw = json.loads(out.read_text())
    for p in pairs:
        assert {p.correct_1, p.correct_2} == {"A", "B"}
        rec = raw[p.pair_id]
        assert rec["cap_1"] != rec["cap_2"]                                  # different labels
        assert p.options[" AB".index(p.correct_1) - 1] == rec["cap_1"]
        assert (tmp_path / p.image_1).is_file() and (tmp_path / p.image_2).is_file()
    assert PixelEncoder("layout").encode([Image.new("RGB", (8, 8))]).shape == (1, 64)


def _tiny_vision_checkpoint(folder, kind):
    """A random, tiny transformers vision checkpoint (safetensors) with an image processor."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, Dinov2Config, Dinov2Model

    small = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}
    if kind == "clip":
        cfg = CLIPConfig(text_config={**small, "vocab_size": 99}, vision_config={**small, "image_size": 32, "patch_size": 8},
                         projection_dim=16)
        CLIPModel(cfg).save_pretrained(folder, safe_serialization=True)
    else:
        Dinov2Model(Dinov2Config(**small, image_size=32, patch_size=8)).save_pretrained(folder, safe_serialization=True)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return str(folder)


def test_mining_with_model_encoders(synth_small, tmp_path):
    import torch

    from medmm.probe.mine import load_encoder

    torch.manual_seed(0)
    clip = _tiny_vision_checkpoint(tmp_path / "clip", "clip")
    dino = _tiny_vision_checkpoint(tmp_path / "dino", "dino")
    images = [Image.new("RGB", (40, 30)), Image.fromarray(np.random.default_rng(0).integers(0, 255, (50, 50, 3), np.uint8))]
    assert load_encoder(f"hf:{clip}").encode(images).shape == (2, 16)      # CLIP: projected image features
    assert load_encoder(f"hf:{dino}").encode(images).shape == (2, 32)      # DINOv2-like: mean hidden state
    assert load_encoder("vlm:tiny:llava").encode(images).shape[0] == 2      # the VLM's own vision tower
    out = tmp_path / "conf.json"
    r = mine_confusion(synth_small / "manifest.jsonl", out, semantic=f"hf:{clip}", visual=f"hf:{dino}", max_pairs=2)
    raw = json.loads(out.read_text())
    assert r.n_pairs == len(raw) <= 2
    assert all(rec["semantic_encoder"].startswith("hf:") and rec["visual_encoder"].startswith("hf:") for rec in raw.values())
    with pytest.raises(InputError, match="use pixels:layout"):
        load_encoder("dino")
