"""Metric functions on hand-built predictions; every expected value is worked out in the comments."""

from __future__ import annotations

import json

import pytest

from medmm.errors import InputError
from medmm.probe.confusion import (ConfusionPair, confusion_metrics, outcomes, read_dataset, read_predictions,
                                   resolve_images)
from medmm.probe.negation import NegationResponse, read_responses, score_negation


def R(image_id, qa_type, gt, response, image_type="ct scan_chest"):
    return NegationResponse(image_id, qa_type, image_type, f"q {qa_type}?", gt, response)


def hand_built():
    return [
        # image 1 (CT chest): modality pair right, organ pair wrong on the adversarial side, one abnormality
        # right, condition pairs 0 right + 1 right-but-hallu-invalid, position pair 0 right
        R(1, "modality_gt", "yes", "Yes"), R(1, "modality_hallu", "no", "No."),
        R(1, "body_part_gt", "yes", "yes"), R(1, "body_part_hallu", "no", "Yes"),
        R(1, "abnormality", "yes", "yes, there is"),
        R(1, "entity_gt_0", "yes", "Yes"), R(1, "entity_hallu_0", "no", "no"),
        R(1, "entity_gt_1", "yes", "Yes"), R(1, "entity_hallu_1", "no", "I cannot tell"),   # invalid
        R(1, "grounding_gt_0", "yes", "Yes"), R(1, "grounding_hallu_0", "no", "No"),
        # image 2 (CT chest, normal): modality hallu missing (missing partner), lone entity_hallu right,
        # grounding gt without its hallu (missing partner)
        R(2, "modality_gt", "yes", "Yes"),
        R(2, "body_part_gt", "yes", "Yes"), R(2, "body_part_hallu", "no", "No"),
        R(2, "abnormality", "no", "No"),
        R(2, "entity_hallu", "no", "No"),
        R(2, "grounding_gt_0", "yes", "Yes"),
        # image 3 (MRI brain): everything asked once, lone entity_hallu wrong, abnormality invalid
        R(3, "modality_gt", "yes", "Yes", "mri_brain"), R(3, "modality_hallu", "no", "No", "mri_brain"),
        R(3, "body_part_gt", "yes", "Normal", "mri_brain"), R(3, "body_part_hallu", "no", "No", "mri_brain"),
        R(3, "abnormality", "no", "", "mri_brain"),
        R(3, "entity_hallu", "no", "Yes", "mri_brain"),
        R(3, "grounding_gt_0", "yes", "Yes", "mri_brain"), R(3, "grounding_hallu_0", "no", "No", "mri_brain"),
        R(3, "grounding_gt_1", "yes", "No", "mri_brain"), R(3, "grounding_hallu_1", "no", "No", "mri_brain"),
    ]


def test_negation_scores_by_hand_robust():
    s = score_negation(hand_built(), parser="robust")
    # CT chest (images 1, 2): modality: image 2 has no partner -> only image 1, right -> 1/1 (weight 1)
    #   organ: image 1 wrong, image 2 right -> 1/2 (weight 2); abnormality: 1 right ("yes, there is"), 1 right -> 2/2
    #   condition: image 1: pair 1 hallu invalid -> 0; image 2: lone entity_hallu right -> 1 -> 1/2, weight = 2 images
    #   position: image 1 right; image 2 has no complete pair -> 1/1, weight = 2 images (the reference's num)
    # MRI brain (image 3): modality 1/1 (w 1); organ gt "Normal" -> invalid -> 0/1 (w 1); abnormality "" -> 0/1
    #   condition lone hallu "Yes" -> 0/1 (w 1); position pair 1 gt wrong -> 0/1 (w 1)
    assert s.scores["modality"] == pytest.approx((1 * 1 + 1 * 1) / 2)
    assert s.scores["organ"] == pytest.approx((0.5 * 2 + 0 * 1) / 3)
    assert s.scores["abnormality"] == pytest.approx((1 * 2 + 0 * 1) / 3)
    assert s.scores["condition"] == pytest.approx((0.5 * 2 + 0 * 1) / 3)
    assert s.scores["position"] == pytest.approx((1 * 2 + 0 * 1) / 3)
    weights = {"modality": 2, "organ": 3, "abnormality": 3, "condition": 3, "position": 3}
    overall = (1 * 2 + (1 / 3) * 3 + (2 / 3) * 3 + (1 / 3) * 3 + (2 / 3) * 3) / sum(weights.values())
    assert s.scores["overall"] == pytest.approx(overall)
    # random: pairs 1/4; image 1 condition has 2 pairs -> 1/16; lone hallu 1/2; positions: image 1 one pair 1/4,
    # image 3 two pairs 1/16
    rb = s.random_baseline
    assert rb["modality"] == pytest.approx(0.25) and rb["organ"] == pytest.approx(0.25)
    assert rb["abnormality"] == pytest.approx(0.5)
    assert rb["condition"] == pytest.approx((((1 / 16 + 1 / 2) / 2) * 2 + 0.5 * 1) / 3)
    assert rb["position"] == pytest.approx(((1 / 4) * 2 + (1 / 16) * 1) / 3)
    # 11 + 6 + 10 questions; invalid answers: "I cannot tell", "Normal", "" -> 3 of 27
    assert s.n_questions == 27 and s.invalid_rate == pytest.approx(3 / 27)
    # per question: modality_hallu 2 asked, both right; entity_hallu_k: 1 right of 2; lone: 1 of 2
    assert s.per_question["modality_hallu"] == {"accuracy": 1.0, "n": 2}
    assert s.per_question["condition_hallu"]["accuracy"] == pytest.approx(0.5)
    assert s.per_question["condition_lone_hallu"]["accuracy"] == pytest.approx(0.5)
    # per pair: position pairs (image 1 pair 0 right, image 3 pair 0 right, pair 1 wrong) -> 2/3
    assert s.per_pair["position"] == {"pair_accuracy": pytest.approx(2 / 3), "n_pairs": 3}
    assert s.per_pair["modality"]["n_pairs"] == 2


def test_negation_compat_differs_where_the_reference_rule_does():
    s = score_negation(hand_built(), parser="probmed-compat")
    # compat: "yes, there is" is wrong (abnormality CT 1/2), "Normal" counts as No -> organ gt of image 3 wrong
    # anyway; "I cannot tell" is wrong too. Only abnormality changes: CT 1/2 (w 2), MRI 0/1.
    assert s.scores["abnormality"] == pytest.approx((0.5 * 2 + 0) / 3)
    assert s.scores["condition"] == pytest.approx((0.5 * 2 + 0 * 1) / 3)


def test_probmed_sample_scores_as_the_reference(shared_data):
    responses = read_responses(shared_data / "probmed" / "response_sample.json")
    assert len(responses) == 22
    s = score_negation(responses, parser="probmed-compat")
    # image 206: modality Yes/No -> right; organ hallu "Yes" -> wrong; abnormality right; entity pairs 0 and 1:
    #   hallu "Yes" -> wrong; grounding pairs: hallu "Yes" -> wrong.
    # image 340: modality hallu "Yes" -> wrong; organ wrong; abnormality right; entity wrong; grounding right.
    expected = {"modality": 1 / 2, "organ": 0.0, "abnormality": 1.0, "condition": 0.0, "position": 1 / 2}
    for k, v in expected.items():
        assert s.scores[k] == pytest.approx(v), k
    # weights: modality 2 images, organ 2, abnormality 2 questions, condition 2 images, position 2 images
    assert s.scores["overall"] == pytest.approx((0.5 * 2 + 0 + 1 * 2 + 0 + 0.5 * 2) / 10)
    # random: image 206 has 2 entity and 2 grounding pairs (1/16), image 340 one each (1/4)
    assert s.random_baseline["condition"] == pytest.approx((1 / 16 + 1 / 4) / 2)
    assert s.random_baseline["overall"] == pytest.approx((0.25 * 2 + 0.25 * 2 + 0.5 * 2 + 0.15625 * 2 * 2) / 10)
    assert s.gt_only["overall"] == pytest.approx(1.0)


def test_bad_response_files(tmp_path):
    p = tmp_path / "r.json"
    p.write_text(json.dumps([{"id": 1, "qa_type": "modality_gt", "image_type": "x", "question": "q", "gt_ans": "yes"}]))
    with pytest.raises(InputError, match="lacks response"):
        read_responses(p)
    p.write_text(json.dumps([{"id": 1, "qa_type": "colour_gt", "image_type": "x", "question": "q", "gt_ans": "yes",
                              "response": "Yes"}]))
    with pytest.raises(InputError, match="unknown ProbMed qa_type"):
        read_responses(p)
    with pytest.raises(InputError, match="empty"):
        score_negation([])


def pair(pid, c1="A", c2="B", cat1=("Cerebral",), cat2=("Cerebral", "Vascular")):
    return ConfusionPair(pid, "q?", "opt a", "opt b", c1, c2, f"{pid}_1.jpg", f"{pid}_2.jpg", cat1, cat2)


def test_confusion_metrics_by_hand():
    pairs = [pair("1"), pair("2", "B", "A"), pair("3"), pair("4", cat1=("Spinal",), cat2=("Spinal",))]
    answers = {
        ("1", 1): "A", ("1", 2): "B",      # both right
        ("2", 1): "A", ("2", 2): "A",      # confused (same valid letter), image 2 right
        ("3", 1): "A", ("3", 2): None,     # one invalid
        ("4", 1): "B",                     # image 2 missing -> invalid; image 1 wrong
    }
    m = confusion_metrics(outcomes(pairs, answers))
    assert m["set_accuracy"] == pytest.approx(1 / 4)
    assert m["individual_accuracy"] == pytest.approx(4 / 8)       # 1:2, 2:1, 3:1, 4:0
    assert m["confusion"] == pytest.approx(1 / 2)                 # valid pairs 1 and 2; pair 2 confused
    assert m["invalid_rate"] == pytest.approx(2 / 8)
    assert m["n_valid_pairs"] == 2
    cer = m["per_category"]["Cerebral"]
    # Cerebral occurs twice per pair in pairs 1-3 (category_1 + category_2) -> 6 occurrences; set right: pair 1 -> 2
    assert cer["n"] == 6 and cer["set_accuracy"] == pytest.approx(2 / 6)
    # images: 6 Cerebral slots, right: 1/1, 1/2, 2/2 (pair 2 image 2), 3/1 -> 4
    assert cer["individual_accuracy"] == pytest.approx(4 / 6)
    # valid pairs 1, 2 -> 4 occurrences, confused pair 2 -> 2
    assert cer["confusion"] == pytest.approx(2 / 4)
    assert cer["invalid_rate"] == pytest.approx(1 / 6)            # pair 3 image 2
    vas = m["per_category"]["Vascular"]                           # only image 2 of pairs 1-3
    assert vas["n"] == 3 and vas["individual_accuracy"] == pytest.approx(2 / 3)
    spi = m["per_category"]["Spinal"]
    assert spi["set_accuracy"] == 0.0 and spi["confusion"] == 0.0 and spi["invalid_rate"] == pytest.approx(1 / 2)
    with pytest.raises(InputError, match="not A, B or null"):
        outcomes(pairs, {("1", 1): "C"})


def test_shared_mediconfusion_set_loads(shared_data, tmp_path):
    pairs = read_dataset(shared_data / "mediconfusion" / "dataset.json")
    assert len(pairs) == 176
    assert len({(p.pair_id, s) for p in pairs for s in (1, 2)}) == 352
    assert all({p.correct_1, p.correct_2} == {"A", "B"} for p in pairs)
    stats = json.loads((shared_data / "mediconfusion" / "statistics.json").read_text())
    counted: dict[str, int] = {}
    for p in pairs:
        for c in p.category_1 + p.category_2:
            counted[c] = counted.get(c, 0) + 1
    assert counted == stats
    # images: two present under a root, the rest reported missing by pair id
    root = tmp_path / "images"
    root.mkdir()
    for p in pairs[:2]:
        (root / p.image_1).write_bytes(b"x")
        (root / p.image_2).write_bytes(b"x")
    (root / pairs[2].image_1).write_bytes(b"x")
    res = resolve_images(pairs, root)
    assert [p.pair_id for p in res.complete] == [pairs[0].pair_id, pairs[1].pair_id]
    assert len(res.missing) == 174 and pairs[2].pair_id in res.missing and len(res.missing[pairs[2].pair_id]) == 1
    assert "174 pair(s) have missing images" in res.message()
    roco = read_dataset(shared_data / "mediconfusion" / "dataset.json", layout="roco")
    assert roco[0].image_1.startswith("train/radiology/images/ROCO_")


def test_predictions_reader(tmp_path):
    p = tmp_path / "p.jsonl"
    p.write_text('{"pair_id": "10001", "image": 1, "answer": "A"}\n{"pair_id": "10001", "image": 2, "answer": null}\n')
    assert read_predictions(p) == {("10001", 1): "A", ("10001", 2): None}
    p.write_text('{"pair_id": "10001", "image": 3, "answer": "A"}\n')
    with pytest.raises(InputError, match="line 1"):
        read_predictions(p)
