"""The report checker's VLM side: which images it sees (CT views, radiograph views, the blind control), the
checker data's image-only errors, the learned ensemble's threshold, the linear calibration."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest


@pytest.fixture(scope="module")
def synth_studies(tmp_path_factory):
    out = tmp_path_factory.mktemp("vlm-views")
    subprocess.run([sys.executable, "-m", "medmm.cli", "synth", "--out", str(out), "--n", "6", "--seed", "3",
                    "--small", "--kinds", "ct,cxr", "--workers", "1"], check=True, capture_output=True)
    with open(out / "manifest.jsonl", encoding="utf-8") as fh:
        return out, [json.loads(line) for line in fh]


def test_ct_views_are_a_coronal_mip_and_an_axial_slice(synth_studies):
    from medmm.imaging.io import load_volume
    from medmm.imaging.views import render
    from medmm.reports.checker_views import checker_views

    root, recs = synth_studies
    ct = next(r for r in recs if r["modality"] == "CT")
    series = next(i["path"] for i in ct["images"] if i["format"] == "dicom-series")
    views = checker_views([series], str(root), max_views=2)
    assert [v.kind for v in views] == ["coronal-mip", "axial-slice"]
    vol = load_volume(os.path.join(root, series))
    # the MIP is the coronal maximum over the whole volume in the lung window; the inference slice is the middle one
    assert np.array_equal(np.asarray(views[0].image)[..., 0], render(vol, window="lung", axis="coronal", mip=True))
    assert np.array_equal(np.asarray(views[1].image)[..., 0], render(vol, window="lung", axis="axial"))
    # at training time the slice the truth points at is shown instead (and only then)
    focus = checker_views([series], str(root), max_views=2, focus_slices=[3])
    assert np.array_equal(np.asarray(focus[1].image)[..., 0], render(vol, window="lung", axis="axial", index=3))
    assert len(checker_views([series], str(root))) == 1  # the default: one view, the coronal MIP


def test_radiograph_views_prefer_the_frontal_and_blind_is_black(synth_studies):
    from medmm.reports.checker_views import blank_like, checker_views, choose_paths

    root, recs = synth_studies
    cxr = next(r for r in recs if r["modality"] in ("DX", "CR") and len(r["images"]) == 2)
    paths = [i["path"] for i in cxr["images"]][::-1]  # lateral first: still the frontal is chosen
    chosen = choose_paths(paths, str(root))
    assert len(chosen) == 1 and chosen[0].endswith("cxr_pa.dcm") or chosen[0].endswith("cxr_ap.dcm")
    (view,) = checker_views(paths, str(root))
    blank = blank_like(view.image)
    assert blank.size == view.image.size and not np.asarray(blank).any() and np.asarray(view.image).any()
    lateral_only = [p for p in paths if "lateral" in p]
    assert choose_paths(lateral_only, str(root))[0].endswith("cxr_lateral.dcm")  # nothing else: the lateral


def test_image_only_errors_keep_the_report_consistent(synth_studies):
    from medmm.reports.checker import check_rules
    from medmm.reports.checker_data import CheckerDataConfig, err_side_all, samples_for_study, split_for

    _, recs = synth_studies
    rng = np.random.default_rng(0)
    sided = [r for r in recs if " left " in r["report"].lower() or " right " in r["report"].lower()]
    assert sided
    for rec in sided:
        new, err = err_side_all(rec, rec["report"], rng)
        # every mention swapped: as many sides as before, none left in place
        assert new.lower().count("left") == rec["report"].lower().count("right")
        assert new.lower().count("right") == rec["report"].lower().count("left")
        assert err.type == "laterality" and not err.text_detectable and err.model.startswith("side swap")
        assert new[err.start:err.end].lower() in ("left", "right")
        assert not check_rules(new).has_error  # no text rule can see it (the point of the image-only models)
    cfg = CheckerDataConfig(error_models={"side swap (every mention)": 1.0})
    st = {"study_id": "A1", "report": sided[0]["report"], "images": ["x.dcm"], "findings": sided[0]["findings"]}
    samples = samples_for_study(st, cfg, split="train")
    assert sorted((s.task, s.has_error) for s in samples) == [("complex", True), ("simple", False), ("simple", True)]
    cx = next(s for s in samples if s.task == "complex")
    assert cx.answer.startswith('laterality: "')
    # splits by a hash of the study (or patient): fixed, and the three parts all occur
    keys = [f"s{i}" for i in range(300)]
    assert {split_for(k) for k in keys} == {"train", "calib", "eval"} and split_for("s7") == split_for("s7")


def test_stacker_threshold_reaches_the_target_precision_on_a_known_set():
    from medmm.reports.ensemble import FEATURES, Stacker, choose_threshold, fit

    # scores with a known ranking: positives at 0.9, 0.8, 0.6, 0.3; negatives at 0.7, 0.4, 0.2, 0.1
    y = [True, True, False, True, False, True, False, False]
    p = [0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2, 0.1]
    assert choose_threshold(y, p, 1.0) == 0.8  # the lowest threshold with precision 1: {0.9, 0.8}
    assert choose_threshold(y, p, 0.75) == 0.6  # {0.9, 0.8, 0.7, 0.6}: 3/4
    # a stacker on separable features: its probabilities rank the labels and its threshold keeps precision >= 0.9
    rng = np.random.default_rng(0)
    lab = rng.random(200) < 0.5
    X = [[float(l) * 0.5, 0.0, (2.0 if l else -2.0) + rng.normal(0, 0.5)] + [1 / 13] * 13 for l in lab]
    st = fit(X, lab.tolist(), fingerprint="abc", target_precision=0.9)
    probs = np.array([st.probability(x) for x in X])
    flagged = probs >= st.threshold
    assert (lab[flagged]).mean() >= 0.9 and flagged.sum() > 50
    assert st.coef[FEATURES.index("vlm_margin")] > 0  # a larger margin means an error
    again = Stacker.from_dict(json.loads(json.dumps(st.to_dict())))
    assert again.probability(X[0]) == pytest.approx(st.probability(X[0]))


def test_stacker_is_refused_for_another_model(tmp_path):
    from medmm.errors import ConfigError
    from medmm.reports.ensemble import fit, stacker_for

    model_dir = tmp_path / "run" / "model"
    model_dir.mkdir(parents=True)
    st = fit([[0, 0, 1] + [0.0] * 13, [0, 0, -1] + [0.0] * 13] * 5, [True, False] * 5, fingerprint="fp-A")
    st.save(str(tmp_path / "run" / "checker" / "ensemble.json"))

    class Fake:
        path = str(model_dir)

        def __init__(self, fp):
            self.fp = fp

        def fingerprint(self):
            return self.fp

    assert stacker_for(Fake("fp-A")).fingerprint == "fp-A"
    with pytest.raises(ConfigError, match="another model"):
        stacker_for(Fake("fp-B"))


def test_calibration_is_the_brute_force_f1_optimum():
    from medmm.reports.vlm_checker import VLMCheckerConfig, calibrate

    rng = np.random.default_rng(1)
    m = np.round(rng.normal(size=300), 1).tolist()  # ties on purpose
    y = (rng.random(300) < 0.4).tolist()
    cal = calibrate(m, y, VLMCheckerConfig())

    def f1(t):
        tp = sum(1 for a, b in zip(m, y) if a > t and b)
        fp = sum(1 for a, b in zip(m, y) if a > t and not b)
        return 2 * tp / (2 * tp + fp + (sum(y) - tp))

    best = max(f1(v - 1e-9) for v in set(m))
    assert f1(cal.threshold) == pytest.approx(best)
