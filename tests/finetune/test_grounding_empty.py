"""Grounding evaluation follows medmm.metrics' one empty-denominator convention: nan in memory, null in JSON."""

from __future__ import annotations

import json
import math

from medmm.finetune.grounding import score, write_metrics
from medmm.regions import Box
from medmm.regions.codecs import Qwen2VLCodec
from medmm.regions.frames import InputTransform
from medmm.regions.readers import LabeledRegion
from medmm.regions.tasks import Sample


def test_no_sample_of_a_task_gives_null_not_zero(tmp_path):
    r2t = Sample("r1", "region_to_text", "a.png", 64, 64, (LabeledRegion("liver", (Box(4, 4, 20, 20, slice=0),)),))
    out = score([r2t], {"r1": "the liver"}, Qwen2VLCodec(), lambda s: InputTransform.identity(64, 64), None)
    assert out["n"] == 0  # no Text→Region sample: its means have no denominator
    assert all(math.isnan(out[k]) for k in ("miou", "parse_rate", "acc@0.5", "baseline_miou"))
    mb = out["multi_box"]
    assert mb["predicted"] == mb["true"] == 0 and math.isnan(mb["precision"]) and math.isnan(mb["recall"])
    assert out["region_to_text"] == {"n": 1, "accuracy": 1.0, "token_f1": out["region_to_text"]["token_f1"]}
    path = write_metrics(out, str(tmp_path / "grounding.json"))
    back = json.loads(open(path).read())
    assert back["miou"] is None and back["multi_box"]["precision"] is None and back["region_to_text"]["accuracy"] == 1.0


def test_nothing_predicted_is_null_precision_and_zero_recall():
    t2r = Sample("t1", "text_to_region", "a.png", 64, 64, (LabeledRegion("liver", (Box(4, 4, 20, 20, slice=0),)),))
    out = score([t2r], {"t1": "no box here"}, Qwen2VLCodec(), lambda s: InputTransform.identity(64, 64), None)
    mb = out["multi_box"]
    assert (mb["matched"], mb["predicted"], mb["true"]) == (0, 0, 1)
    assert math.isnan(mb["precision"]) and mb["recall"] == 0.0 and mb["f1"] == 0.0
    assert out["n"] == 1 and out["miou"] == 0.0 and out["parse_rate"] == 0.0
