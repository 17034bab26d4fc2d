"""``--parser probmed-compat`` reproduces every number of ProbMed's ``calculate_score.py``; MediConfusion's
confusion is defined (0) when no pair has two valid answers, as its reference. Expected numbers are worked
out by hand from the reference's rules (the reference itself is not in this repository)."""

from __future__ import annotations

import json

import pytest

from medmm.cli import main
from medmm.probe.confusion import ConfusionPair, confusion_metrics, outcomes
from medmm.probe.negation import NegationResponse, probmed_reference, read_responses, score_negation

RIGHT = {"yes": "Yes", "no": "No"}
WRONG = {"yes": "No", "no": "Yes"}
TRUTH = {"gt": "yes", "hallu": "no"}


def rec(image_id, image_type, qa_type, ok):
    truth = "yes" if ("gt" in qa_type or qa_type == "abnormality") else "no"
    return NegationResponse(image_id, qa_type, image_type, "q (please answer yes/no)", truth,
                            (RIGHT if ok else WRONG)[truth])


def lone_file():
    """Two image types; the last image of each has lone modality / organ questions and no position pair."""
    ct, mr = "ct scan_abdomen", "mri_brain"
    return [
        # image 1 (CT): complete pairs
        rec(1, ct, "modality_gt", 1), rec(1, ct, "modality_hallu", 1),
        rec(1, ct, "body_part_gt", 1), rec(1, ct, "body_part_hallu", 0),
        rec(1, ct, "abnormality", 1),
        rec(1, ct, "entity_gt_1", 1), rec(1, ct, "entity_hallu_1", 1),
        rec(1, ct, "grounding_gt_1", 1), rec(1, ct, "grounding_hallu_1", 0),
        # image 2 (last CT): a lone modality question, a full organ pair, a lone made-up finding
        rec(2, ct, "modality_gt", 1),
        rec(2, ct, "body_part_gt", 0), rec(2, ct, "body_part_hallu", 1),
        rec(2, ct, "abnormality", 0),
        rec(2, ct, "entity_hallu", 1),
        # image 3 (MR)
        rec(3, mr, "modality_gt", 0), rec(3, mr, "modality_hallu", 1),
        rec(3, mr, "body_part_gt", 1), rec(3, mr, "body_part_hallu", 1),
        rec(3, mr, "abnormality", 1),
        rec(3, mr, "entity_gt_1", 1), rec(3, mr, "entity_hallu_1", 1),
        rec(3, mr, "entity_gt_2", 1), rec(3, mr, "entity_hallu_2", 0),
        rec(3, mr, "grounding_gt_1", 1), rec(3, mr, "grounding_hallu_1", 1),
        # image 4 (last MR): a full modality pair, a lone organ question
        rec(4, mr, "modality_gt", 1), rec(4, mr, "modality_hallu", 1),
        rec(4, mr, "body_part_gt", 1),
        rec(4, mr, "abnormality", 1),
    ]


def test_compat_reproduces_the_reference_on_lone_questions():
    ref = probmed_reference(lone_file())
    ct, mr = ref["per_image_type"]["ct scan_abdomen"], ref["per_image_type"]["mri_brain"]
    # CT: modality [1,1] and the last image's lone [1] -> both right, num 2; organ [1,0], [0,1] -> 0 %, first 50 %
    assert ct["modality"] == {"acc": 100.0, "acc w. hallu": 100.0, "num": 2}
    assert ct["body_part"] == {"acc": 0.0, "acc w. hallu": 50.0, "num": 2}
    assert ct["abnormality"] == {"acc": 50.0, "num": 2}
    # condition: [[1,1]] and the lone [1] -> 100 %; position: [[1,0]] and an empty image -> 0 %, first 100 %, num 2
    assert ct["entity"] == {"acc": 100.0, "acc w. hallu": 100.0, "num": 2}
    assert ct["grounding"] == {"acc": 0.0, "acc w. hallu": 100.0, "num": 2}
    # MR: modality [0,1], [1,1] -> 50 %; organ [1,1] and the last image's lone [1] -> 100 %
    assert mr["modality"] == {"acc": 50.0, "acc w. hallu": 50.0, "num": 2}
    assert mr["body_part"] == {"acc": 100.0, "acc w. hallu": 100.0, "num": 2}
    assert mr["entity"] == {"acc": 0.0, "acc w. hallu": 100.0, "num": 2}
    assert mr["grounding"] == {"acc": 100.0, "acc w. hallu": 100.0, "num": 2}
    cat = ref["per_category"]  # every num is 2 per type: plain means of the two types
    assert cat["abnormality"] == {"acc": 75.0, "num": 4}
    assert cat["modality"] == {"acc": 75.0, "num": 4, "acc w. hallu": 75.0}
    assert cat["body_part"] == {"acc": 50.0, "num": 4, "acc w. hallu": 75.0}
    assert cat["entity"] == {"acc": 50.0, "num": 4, "acc w. hallu": 100.0}
    assert cat["grounding"] == {"acc": 50.0, "num": 4, "acc w. hallu": 100.0}
    # overall: five categories (75+75+50+50+50)/5; without adversarial: FOUR categories (75+75+100+100)/4
    assert ref["overall"] == {"acc": pytest.approx(60.0), "num": 20, "acc w.o. adv pair": pytest.approx(87.5),
                              "num w.o. adv pair": 16}
    s = score_negation(lone_file(), parser="probmed-compat")
    assert s.scores["modality"] == pytest.approx(0.75) and s.scores["overall"] == pytest.approx(0.60)
    assert s.gt_only["overall"] == pytest.approx(0.875) and s.to_dict()["without_adversarial"]["abnormality"] is None
    assert s.to_dict()["reference"]["overall"]["acc w.o. adv pair"] == pytest.approx(87.5)


def test_default_aggregation_differs_where_documented():
    s = score_negation(lone_file(), parser="robust")
    # medmm drops every incomplete pair: CT modality only image 1 (1/1, weight 1); MR 1/2 (weight 2)
    assert s.scores["modality"] == pytest.approx((1 * 1 + 0.5 * 2) / 3)
    # organ: CT 0/2 (weight 2), MR only image 3 (1/1, weight 1)
    assert s.scores["organ"] == pytest.approx(1 / 3)
    # without adversarial: five categories (abnormality included), weighted by their weights
    w = s.gt_only
    weights = {"modality": 3, "organ": 3, "abnormality": 4, "condition": 4, "position": 4}
    # modality gt: CT img1 1 (w1); MR img3 0, img4 1 -> (1 + 1) / 3; organ gt: CT 1, 0; MR 1 -> 2/3
    assert w["modality"] == pytest.approx(2 / 3) and w["organ"] == pytest.approx(2 / 3)
    assert w["abnormality"] == pytest.approx(0.75) and w["condition"] == pytest.approx(1.0)
    assert w["position"] == pytest.approx(1.0)
    expected = (2 / 3 * 3 + 2 / 3 * 3 + 0.75 * 4 + 1.0 * 4 + 1.0 * 4) / sum(weights.values())
    assert w["overall"] == pytest.approx(expected)


def test_compat_on_the_shared_sample(shared_data):
    responses = read_responses(shared_data / "probmed" / "response_sample.json")
    ref = probmed_reference(responses)
    t = ref["per_image_type"]["ct scan_abdomen"]
    # image 206: modality [1,1], organ [1,0], entity [[1,0],[1,0]], grounding [[1,0],[1,0]], abnormality 1
    # image 340: modality [1,0], organ [1,0], entity [[1,0]], grounding [[1,1]], abnormality 1
    assert t["modality"] == {"acc": 50.0, "acc w. hallu": 100.0, "num": 2}
    assert t["body_part"] == {"acc": 0.0, "acc w. hallu": 100.0, "num": 2}
    assert t["abnormality"] == {"acc": 100.0, "num": 2}
    assert t["entity"] == {"acc": 0.0, "acc w. hallu": 100.0, "num": 2}
    assert t["grounding"] == {"acc": 50.0, "acc w. hallu": 100.0, "num": 2}
    assert ref["overall"]["acc"] == pytest.approx((50 + 0 + 100 + 0 + 50) / 5)
    assert ref["overall"]["acc w.o. adv pair"] == pytest.approx(100.0) and ref["overall"]["num w.o. adv pair"] == 8


def test_probe_score_cli_prints_the_reference_tables(tmp_path, capsys):
    path = tmp_path / "resp.json"
    path.write_text(json.dumps([r.__dict__ for r in lone_file()]))
    out = tmp_path / "m.json"
    assert main(["probe", "score", "--bench", "negation", "--predictions", str(path), "--parser", "probmed-compat",
                 "--out", str(out)]) == 0
    got = json.loads(out.read_text())
    assert got["overall"] == pytest.approx(0.6) and got["without_adversarial"]["overall"] == pytest.approx(0.875)
    assert got["reference"]["per_category"]["body_part"]["acc w. hallu"] == pytest.approx(75.0)


def test_reference_refuses_what_the_reference_cannot_score():
    from medmm.errors import InputError

    with pytest.raises(InputError, match="divides by zero"):
        probmed_reference([rec(1, "x", "modality_gt", 1), rec(1, "x", "modality_hallu", 1)])  # no abnormality


def _pair(pid):
    return ConfusionPair(pid, "q?", "a", "b", "A", "B", f"{pid}_1.jpg", f"{pid}_2.jpg", ("Cerebral",), ("Spinal",))


def test_confusion_is_zero_when_every_answer_is_invalid():
    outs = outcomes([_pair("1"), _pair("2")], {("1", 1): None, ("1", 2): "A", ("2", 1): None})
    m = confusion_metrics(outs)
    assert m["n_valid_pairs"] == 0 and m["confusion"] == 0.0  # the reference: confused pairs counted, none
    assert m["per_category"]["Cerebral"]["confusion"] == 0.0
    assert m["set_accuracy"] == 0.0 and m["invalid_rate"] == pytest.approx(3 / 4)


def test_mediconfusion_raw_results_file_is_scored(tmp_path):
    """The published raw results (``Results/<model>/<model>_mc.json``): letters re-derived from the A/B scores."""
    from medmm.probe.confusion import raw_result_letter, read_predictions

    raw = {
        "1": {"answer": {"im1": {"A": 10, "B": 0, "full_answer": "A"}, "im2": {"A": 0, "B": 10, "full_answer": "B"}},
              "score": {"set_score": {"total": 1}}},
        "2": {"answer": {"im1": {"A": 0, "B": 0, "full_answer": "A or B"}, "im2": {"A": 7, "B": 5}}},
    }
    path = tmp_path / "model_mc.json"
    path.write_text(json.dumps(raw))
    preds = read_predictions(path)
    assert preds == {("1", 1): "A", ("1", 2): "B", ("2", 1): None, ("2", 2): None}  # 7 vs 5: lead < 3 -> invalid
    assert raw_result_letter({"A": 2, "B": 9}) == "B"
    m = confusion_metrics(outcomes([_pair("1"), _pair("2")], preds))
    assert m["set_accuracy"] == 0.5 and m["confusion"] == 0.0 and m["invalid_rate"] == 0.5


def test_metrics_json_has_the_weights_that_explain_the_weighted_score():
    d = score_negation(lone_file(), parser="robust").to_dict()
    ct, mr = d["per_image_type"]["ct scan_abdomen"]["weights"], d["per_image_type"]["mri_brain"]["weights"]
    # modality: CT counts image 1 only (image 2's lone question is dropped by default), MR both images
    assert ct == {"modality": 1, "organ": 2, "abnormality": 2, "condition": 2, "position": 2}
    assert mr == {"modality": 2, "organ": 1, "abnormality": 2, "condition": 2, "position": 2}
    assert d["weights"] == {"modality": 3, "organ": 3, "abnormality": 4, "condition": 4, "position": 4}
    overall = sum(d[c] * w for c, w in d["weights"].items()) / sum(d["weights"].values())
    assert d["overall"] == pytest.approx(overall, abs=1e-6)
