"""The probe runner: cache keys, failed and empty answers, bad images, missing pairs, http concurrency."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
from PIL import Image

from medmm.errors import InputError
from medmm.probe.confusion import read_predictions
from medmm.probe.negation import read_responses, score_negation
from medmm.probe.runner import run_probe
from medmm.runs import ResultCache

from .conftest import FakeVLM


def _images(folder, names):
    folder.mkdir(exist_ok=True)
    for i, n in enumerate(names):
        Image.fromarray(np.full((24, 24, 3), 40 * i, np.uint8)).save(folder / n)


def _negation_file(tmp_path, image_names=("a.png", "b.png")):
    _images(tmp_path, image_names)
    qs = []
    for k, name in enumerate(image_names):
        for qa, ans, text in (("modality_gt", "yes", "Is this a CT Scan?"), ("modality_hallu", "no", "Is this an MRI?"),
                              ("abnormality", "no", f"Any abnormality {k}?"),
                              ("grounding_gt_0", "yes", "Nodule in the left lobe?"),
                              ("grounding_hallu_0", "no", "Nodule in the right lobe?")):
            qs.append({"id": k, "image": name, "image_type": "ct scan_chest", "qa_type": qa,
                       "question": text + " (please answer yes/no)", "answer": ans,
                       "medmm": {"box": [2, 2, 10, 10]} if qa.startswith("grounding") else {}})
    path = tmp_path / "q.json"
    path.write_text(json.dumps(qs))
    return path


def test_failed_and_empty_answers_are_never_reused(tmp_path):
    data = _negation_file(tmp_path)
    model = FakeVLM(empty_once=["Any abnormality 1?"])
    first = run_probe("negation", str(data), model, str(tmp_path / "run"), controls=("blind",), progress=False)
    assert first.n_samples == 40 and first.n_computed == 40 and first.n_failed == 1  # image + none, blank, noise
    rec = [json.loads(l) for l in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    failed = [r for r in rec if r["status"] == "failed"]
    assert [(r["unit"].split("/")[-1], r["variant"], r["error"]) for r in failed] == [("abnormality", "image", "empty answer")]
    model.calls = 0
    second = run_probe("negation", str(data), model, str(tmp_path / "run"), controls=("blind",), progress=False)
    assert (second.n_computed, second.n_cached, second.n_failed, model.calls) == (1, 39, 0, 1)
    assert model.seen[-1].startswith("Any abnormality 1?")
    model.calls = 0
    third = run_probe("negation", str(data), model, str(tmp_path / "run"), controls=("blind",), progress=False)
    assert (third.n_computed, model.calls) == (0, 0)
    # a different model (fingerprint) is a different configuration: nothing is reused
    other = FakeVLM()
    other.fingerprint = lambda: "another-model"  # type: ignore[method-assign]
    fourth = run_probe("negation", str(data), other, str(tmp_path / "run"), controls=("blind",), progress=False)
    assert fourth.n_computed == 40
    # responses.json is ProbMed's response format and scores to the same numbers as the run
    responses = read_responses(tmp_path / "run" / "responses.json")
    assert len(responses) == 10
    assert score_negation(responses).to_dict()["overall"] == pytest.approx(fourth.metrics["overall"])


def test_bad_image_fails_its_samples_only(tmp_path):
    data = _negation_file(tmp_path)
    (tmp_path / "b.png").write_bytes(b"not a png")
    r = run_probe("negation", str(data), FakeVLM(), str(tmp_path / "run"), progress=False)
    rec = [json.loads(l) for l in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    bad = [x for x in rec if x["status"] == "failed"]
    assert r.n_failed == 5 and all(x["image"] == "b.png" and "not a readable image" in x["error"] for x in bad)
    assert all(x["status"] == "ok" for x in rec if x["image"] == "a.png")


def test_model_error_on_one_item_spares_the_batch(tmp_path):
    data = _negation_file(tmp_path)
    r = run_probe("negation", str(data), FakeVLM(fail_on=["Any abnormality 0?"]), str(tmp_path / "run"),
                  batch_size=10, progress=False)
    rec = [json.loads(l) for l in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert r.n_failed == 1
    assert [x["error"] for x in rec if x["status"] == "failed"] == ["ModelError: fake failure"]


def test_region_and_text_controls(tmp_path):
    data = _negation_file(tmp_path)
    r = run_probe("negation", str(data), FakeVLM(), str(tmp_path / "run"), mode="greedy",
                  controls=("text", "region"), progress=False)
    rec = [json.loads(l) for l in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    variants = {}
    for x in rec:
        variants[x["variant"]] = variants.get(x["variant"], 0) + 1
    # 10 questions; text: 10 hinted; region: the 4 grounding questions cropped and drawn
    assert variants == {"image": 10, "text": 10, "crop": 4, "draw": 4}
    hinted = [x for x in rec if x["variant"] == "text"]
    assert all(x["prompt"].startswith('Hint: the radiology report says the answer to this question is "') for x in hinted)
    assert {x["meta"]["hint"] for x in hinted if x["meta"]["gt_ans"] == "yes"} == {"no"}
    tp = r.metrics["controls"]["text_preference"]
    assert tp["follows_text"] + tp["follows_image"] + tp["neither"] <= 10
    assert set(r.metrics["controls"]["region_check"]) == {"image", "crop", "draw"}


def test_confusion_missing_images_reported_by_pair(tmp_path, shared_data):
    _images(tmp_path / "images", ["20192.jpg", "20053.jpg"])  # both images of pair 10001 only
    data = shared_data / "mediconfusion" / "dataset.json"
    r = run_probe("confusion", str(data), FakeVLM(), str(tmp_path / "run"), images=str(tmp_path / "images"),
                  mode="greedy", progress=False)
    assert len(r.missing_pairs) == 175 and "10001" not in r.missing_pairs
    assert r.metrics["n_pairs"] == 1 and r.n_samples == 2
    preds = read_predictions(tmp_path / "run" / "predictions.jsonl")
    assert set(preds) == {("10001", 1), ("10001", 2)} and all(v in ("A", "B") for v in preds.values())
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["config"]["model"] == "fake-vlm-v1" and run["prompts"]["greedy"].startswith("Based on the image")
    with pytest.raises(InputError, match="does not apply to negation"):
        run_probe("negation", str(data), FakeVLM(), str(tmp_path / "x"), mode="prefix", progress=False)
    with pytest.raises(InputError, match="needs --judge"):
        run_probe("confusion", str(data), FakeVLM(), str(tmp_path / "x"), mode="judge", progress=False)


def test_http_model_runs_concurrently(tmp_path):
    from tests.test_models_http import FakeServer

    from medmm.models import load

    data = _negation_file(tmp_path, tuple(f"{c}.png" for c in "abcd"))
    server = FakeServer()
    server.delay = 0.05
    try:
        model = load(f"http:{server.url}", concurrency=4)
        r = run_probe("negation", str(data), model, str(tmp_path / "run"), batch_size=8, progress=False)
    finally:
        server.close()
    assert r.n_computed == 20 and r.n_failed == 0
    assert server.max_active >= 2  # requests of a batch overlap
    from medmm.models import UnsupportedError

    conf = tmp_path / "conf.json"
    conf.write_text(json.dumps({"1": {"question": "q?", "option_A": "a", "option_B": "b", "im_1_correct": "A",
                                      "im_2_correct": "B", "category_1": [], "category_2": [], "im_1": "a.png",
                                      "im_2": "b.png"}}))
    with pytest.raises(UnsupportedError, match="first answer token only"):
        run_probe("confusion", str(conf), model, str(tmp_path / "prefix"), mode="prefix", progress=False)
    with sqlite3.connect(tmp_path / "run" / "cache.sqlite") as c:
        assert c.execute("SELECT COUNT(*) FROM results WHERE status='ok'").fetchone()[0] == 20


def test_cache_is_the_shared_result_cache(tmp_path):
    data = _negation_file(tmp_path)
    run_probe("negation", str(data), FakeVLM(), str(tmp_path / "run"), cache=str(tmp_path / "shared.sqlite"),
              progress=False)
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    with ResultCache(tmp_path / "shared.sqlite") as cache:
        assert cache.counts(run["config_key"]) == {"ok": 10, "failed": 0}
        assert cache.config(run["config_key"])["kind"] == "probe"
    assert not (tmp_path / "run" / "cache.sqlite").exists()


def test_shards_share_one_cache_and_a_final_run_answers_nothing(tmp_path):
    data = _negation_file(tmp_path, tuple(f"{c}.png" for c in "abcdef"))
    cache = str(tmp_path / "shared.sqlite")
    model = FakeVLM()
    counts = []
    for k in range(3):
        r = run_probe("negation", str(data), model, str(tmp_path / f"shard{k}"), cache=cache, shard=(k, 3),
                      progress=False)
        counts.append(r.n_samples)
        if r.n_samples:
            rows = (tmp_path / f"shard{k}" / "samples.jsonl").read_text().splitlines()
            assert r.n_samples == 5 * len({json.loads(line)["group"] for line in rows})  # whole images only
    assert sum(counts) == 30 and max(counts) < 30 and model.calls == 30
    final = run_probe("negation", str(data), model, str(tmp_path / "all"), cache=cache, progress=False)
    assert (final.n_samples, final.n_computed, final.n_cached, model.calls) == (30, 0, 30, 30)
    with pytest.raises(InputError, match="shard 3/3"):
        run_probe("negation", str(data), model, str(tmp_path / "x"), shard=(3, 3), progress=False)


def test_a_changed_image_is_asked_again_a_moved_one_is_not(tmp_path):
    import shutil

    data = _negation_file(tmp_path)
    model = FakeVLM()
    run_probe("negation", str(data), model, str(tmp_path / "run"), progress=False)
    Image.fromarray(np.full((24, 24, 3), 200, np.uint8)).save(tmp_path / "b.png")   # new pixels for image b
    model.calls = 0
    r = run_probe("negation", str(data), model, str(tmp_path / "run"), progress=False)
    assert (r.n_computed, r.n_cached, model.calls) == (5, 5, 5)                     # b's five questions only
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    for name in ("a.png", "b.png", "q.json"):
        shutil.copy(tmp_path / name, moved / name)
    r = run_probe("negation", str(moved / "q.json"), model, str(tmp_path / "run"), progress=False)
    assert (r.n_computed, r.n_cached) == (0, 10)
    with pytest.raises(InputError, match="does not apply to negation"):
        run_probe("negation", str(data), model, str(tmp_path / "x"), parser="mediconfusion-compat", progress=False)


@pytest.mark.parametrize("mode", ["mc", "greedy"])
def test_blind_none_variant_sends_no_image(tmp_path, mode):
    """MMStar's blind control: the question alone. The model input of a ``none`` sample holds no image; blank and
    noise hold one stand-in image of the original's size; all three sit beside each other in metrics.json."""
    data = _negation_file(tmp_path)
    model = FakeVLM()
    r = run_probe("negation", str(data), model, str(tmp_path / "run"), mode=mode, controls=("blind",), progress=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert {x["variant"] for x in rows} == {"image", "none", "blank", "noise"}
    n_images = sorted(len(req.images) for req in model.requests)
    assert n_images.count(0) == 10 and n_images.count(1) == 30  # 10 questions: none has 0 images, the rest 1
    blank = [req for req in model.requests if req.images and not np.asarray(req.pil_images()[0]).any()]
    # 10 blank stand-ins, plus image a.png (black itself) and its noise-free original questions: 5
    assert len(blank) == 15 and all(req.pil_images()[0].size == (24, 24) for req in blank)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert list(metrics["variants"]) == ["none", "blank", "noise"]
    assert list(metrics["controls"]["multimodal_gain"]) == ["none", "blank", "noise"]
    assert r.metrics["variants"]["none"]["n_questions"] == 10


class _TextOnly(FakeVLM):
    """A 'language model alone': always answers yes (so its score differs from the VLM's)."""

    def generate(self, requests, max_new_tokens=64, temperature=0.0, **kwargs):
        from medmm.models.base import Generation

        self.requests.extend(requests)
        return [Generation("Yes", 1, 1, 0.0, "stop") for _ in requests]

    def fingerprint(self):
        return "text-only-lm"


def test_multimodal_leakage_with_the_language_model_alone(tmp_path):
    """MMStar's ML = max(0, S without image - S of the LLM): the llm variant goes to the language model, with no
    image; the none variant is added; a changed LLM is another configuration."""
    from medmm.probe.report import build_report

    data = _negation_file(tmp_path)
    vlm, lm = FakeVLM(), _TextOnly()
    r = run_probe("negation", str(data), vlm, str(tmp_path / "run"), llm=lm, progress=False)
    assert len(lm.requests) == 10 and all(len(q.images) == 0 for q in lm.requests)
    assert sorted(len(q.images) for q in vlm.requests) == [0] * 10 + [1] * 10  # none (no image) + image
    variants = r.metrics["variants"]
    leak = r.metrics["controls"]["multimodal_leakage"]
    for k in ("modality", "abnormality", "overall"):
        a, b = variants["none"][k], variants["llm"][k]
        if a is not None and b is not None:
            assert leak[k] == pytest.approx(max(0.0, a - b), abs=1e-6)
    assert variants["llm"]["modality"] == 0.0  # always yes: every adversarial question wrong
    md = build_report(str(tmp_path / "run"), n_boot=50).markdown
    assert "Multimodal leakage (MMStar)" in md
    other = _TextOnly()
    other.fingerprint = lambda: "another-lm"  # type: ignore[method-assign]
    again = run_probe("negation", str(data), vlm, str(tmp_path / "run"), llm=other, progress=False)
    assert again.n_computed == 30  # another LLM: nothing reused under the old configuration
