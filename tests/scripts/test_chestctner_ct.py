"""scripts/chestctner_ct.py on made-up Label Studio tasks in the layout of leechehao/Chest-CT-NER's new_data/*.json
(no text of that repository here)."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _script():  # noqa: ANN202 - the converter is a script, not a package module
    spec = importlib.util.spec_from_file_location("chestctner_ct", ROOT / "scripts" / "chestctner_ct.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _task(tid: int, text: str, section: str = "FIND", inner: int | None = None) -> dict:
    return {"id": tid, "inner_id": tid if inner is None else inner, "annotations": [{"result": []}],
            "data": {"Text": text, "Section": section, "Tag": section, "Hosp_id": 1}}


def test_tokeniser_spaces_go_and_words_stay():
    mod = _script()
    assert mod.detokenise("> Made-up nodule at RLL ( 3 mm , Ser/Img : 2/3 ) , stable .") == \
        "> Made-up nodule at RLL (3 mm, Ser/Img: 2/3), stable."
    assert mod.detokenise("about 50 % , [ made up ]") == "about 50%, [made up]"


def test_one_row_per_sentence_in_task_order_without_repeats():
    dropped: Counter = Counter()
    rows = _script().convert([_task(12, "Made-up impression .", "IMP", inner=3), _task(10, "Comparison : none"),
                              _task(11, "Made-up  nodule , stable ."), _task(13, "made-up nodule, stable."),
                              _task(14, " ")], dropped)
    assert [(r["id"], r["section"], r["text"]) for r in rows] == [
        ("cctner12", "IMP", "Made-up impression."), ("cctner10", "FIND", "Comparison: none"),
        ("cctner11", "FIND", "Made-up nodule, stable.")]  # Label Studio's inner_id orders the tasks
    assert rows[0]["header"] == {"modality": "CT", "body_part": "CHEST"} and rows[0]["source"] == "chest-ct-ner"
    assert dropped == Counter({"same sentence as an earlier task": 1, "no text": 1})


def test_main_reads_several_exports(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps([_task(1, "Made-up sentence one .")]), encoding="utf-8")
    b.write_text(json.dumps([_task(2, "Made-up sentence two .", "IMP")]), encoding="utf-8")
    assert _script().main([str(a), str(b), str(tmp_path / "out")]) == 0
    lines = (tmp_path / "out" / "chestctner_ct.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["id"] for x in lines] == ["cctner1", "cctner2"]
