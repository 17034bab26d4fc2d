"""Claim verification (``verify_sides``): the model is asked each sided claim's side on the image alone; a
contradicted claim raises the report's margin and the flag points at the claim's sentence."""

from __future__ import annotations

from dataclasses import replace

from PIL import Image

from medmm.reports.vlm_checker import VLMCheckerConfig, judge, side_claims


class _Reader:
    """A stand-in model that "sees" the effusion on the right: it answers the side question with right, and
    says no to every yes/no question; it records the prompts it gets."""

    def __init__(self):
        self.prompts = []

    def score_options(self, requests, options, reduction="sum"):
        rows = []
        for r in requests:
            text = "".join(c.get("text", "") for m in r.messages for c in m["content"] if c["type"] == "text")
            self.prompts.append((text, len(r.images)))
            if options == ["left", "right"]:
                rows.append([-3.0, -0.1])
            else:
                rows.append([-2.0] + [-0.2] * (len(options) - 1))
        return rows


def test_claims_are_one_sided_positive_findings_of_the_listed_types():
    report = ("FINDINGS: Small right pleural effusion. A mass in the left lower lobe and a mass in the right upper "
              "lobe. No left pneumothorax. Left chest wall pacemaker.")
    claims = side_claims(report, ("effusion", "mass", "pneumothorax"))
    assert [(c.finding, c.side) for c in claims] == [("effusion", "right")]  # mass: both sides; pneumothorax: negated
    assert report[claims[0].start:claims[0].end] == "pleural effusion"


def test_a_contradicted_claim_decides_the_margin_and_a_consistent_one_does_not():
    cfg = replace(VLMCheckerConfig.load(), verify_sides=("effusion",))
    img = [Image.new("L", (32, 32))]
    model = _Reader()
    right, left = judge(model, ["FINDINGS: Small right pleural effusion.", "FINDINGS: Small left pleural effusion."],
                        [img, img], cfg, complex_=False)
    assert right.yes_no_margin == left.yes_no_margin == -1.8
    assert right.margin == -1.8 - 2.9 and right.contradicted is None  # the image agrees: evidence against an error
    assert left.margin == -1.8 + 2.9 and left.contradicted.finding == "effusion"  # + log p(right) - log p(left)
    asked = [p for p in model.prompts if "Which side" in p[0]]
    assert len(asked) == 2 and all("pleural" not in p[0] and p[1] == 1 for p in asked)  # the image alone, no report
    assert judge(_Reader(), ["FINDINGS: Small left pleural effusion."], None, cfg, complex_=False)[0].claims == []
    off = judge(_Reader(), ["FINDINGS: Small left pleural effusion."], [img], VLMCheckerConfig.load(), complex_=False)
    assert off[0].margin == -1.8 and off[0].yes_no_margin is None and off[0].claims == []


def test_the_flag_of_a_contradicted_claim_is_on_its_sentence_and_says_what_the_image_shows():
    from medmm.reports.vlm_run import VLMChecker

    cfg = replace(VLMCheckerConfig.load(), verify_sides=("effusion",), threshold=0.0)
    text = "FINDINGS: Heart size is normal. Small left pleural effusion.\n\nIMPRESSION: Left effusion."
    model = _Reader()
    model.fingerprint = lambda: "f" * 64
    res = VLMChecker("vlm", model, cfg, explain=False).check(text, None, [Image.new("L", (32, 32))])
    assert res.has_error
    (flag,) = res.flags
    assert flag.text == "Small left pleural effusion." and flag.type == "laterality"
    assert "effusion on the right in the image" in flag.explanation and "says left" in flag.explanation


def test_a_local_llava_gets_its_views_padded_to_a_square_as_in_training():
    from medmm.finetune.inputs import prepare_image
    from medmm.models import load
    from medmm.reports.vlm_checker import model_views

    vlm = load("tiny:llava")
    portrait = Image.new("L", (40, 64), 200)
    (view,) = model_views(vlm, [portrait])
    assert view.size == (64, 64) and list(view.getdata()) == list(prepare_image(vlm, portrait).getdata())
    assert model_views(object(), [portrait]) == [portrait]  # a model without a local processor: unchanged
