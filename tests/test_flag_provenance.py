"""A flag's provenance end to end (issue 18 item 6, issue 21 item 3): the model that raised it, its decoded region
and the related spans of a conflict go from the checker's Flag through the result cache, the audit store (schema
v9, hash-chained), its readers and the exports, and a v8 store migrates without losing its chain."""

from __future__ import annotations

import json
import sqlite3

import pandas as pd
import pytest

from medmm.audit import chain
from medmm.audit import store as store_mod
from medmm.audit.runner import export, result_from_dict, result_to_dict
from medmm.audit.store import SCHEMA_VERSION, Store, StudyRecord
from medmm.reports.flags import CheckResult, Flag, Span
from medmm.runs import RunConfig

REPORT = ("FINDINGS: Small right pleural effusion. The heart is normal.\n"
          "IMPRESSION: Small left pleural effusion.")
REGION = {"x1": 4.0, "y1": 6.0, "x2": 20.0, "y2": 18.0, "image": 0, "slice": None, "label": "effusion",
          "frame": "acquisition"}


def _vlm_flag() -> Flag:
    s = REPORT.index("Small right")
    e = REPORT.index(".", s) + 1
    return Flag("laterality", s, e, REPORT[s:e], "the VLM reads the other side; evidence: the image", 0.83, "image",
                "vlm", model="hf:runs/synth-checker/model@0123456789ab", region=REGION)


def _conflict_flag() -> Flag:
    s = REPORT.index("Small left")
    e = REPORT.index(".", s) + 1
    r = REPORT.index("Small right")
    re_ = REPORT.index(".", r) + 1
    return Flag("laterality", s, e, REPORT[s:e], "sides conflict", 0.9, "text", "side_conflict",
                (Span(r, re_, REPORT[r:re_]),))


def _result(*flags: Flag) -> CheckResult:
    return CheckResult(True, 0.9, list(flags), "ensemble")


def _filled(db: str) -> tuple[Store, str]:
    s = Store(db)
    run_id, key = s.start_run(RunConfig.build("audit", checker="ensemble", model="hf:m"))
    s.record_result(run_id, key, StudyRecord("src-1", None, {"modality": "CR"}, REPORT),
                    _result(_vlm_flag(), _conflict_flag()))
    s.record_result(run_id, key, StudyRecord("src-2", None, {"modality": "CR"}, REPORT),
                    _result(Flag("transcription", 0, 8, REPORT[:8], "typo", 0.5, "text", "typo")))
    return s, key


def test_flag_dict_round_trip_and_check_json_shape():
    f = _vlm_flag()
    d = f.as_dict()
    assert d["model"].startswith("hf:runs/synth-checker/model") and d["region"] == REGION and "rule" not in d
    assert Flag.from_dict(json.loads(json.dumps(f.to_dict()))) == f
    c = _conflict_flag()
    assert c.as_dict()["related"] == [{"start": c.related[0].start, "end": c.related[0].end,
                                       "text": "Small right pleural effusion."}]
    assert Flag.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    assert Flag.from_dict({k: v for k, v in c.to_dict().items() if k not in ("model", "region")}) == c  # older cache
    with pytest.raises(ValueError, match="box dict"):
        Flag("transcription", 0, 1, "F", "x", 0.5, region=(1, 2, 3, 4))  # type: ignore[arg-type]


def test_result_cache_keeps_provenance():
    res = _result(_vlm_flag(), _conflict_flag())
    back = result_from_dict(json.loads(json.dumps(result_to_dict(res))))
    assert back.flags == res.flags
    assert back.flags[0].region == REGION and back.flags[1].related[0].text == "Small right pleural effusion."


def test_store_keeps_model_region_and_related(tmp_path):
    db = str(tmp_path / "a.sqlite")
    s, key = _filled(db)
    try:
        assert s.schema_version == SCHEMA_VERSION == 9
        study = s.study(s.study_key("src-1"), key)
        by_rule = {f["evidence"]: f for f in study["flags"]}
        vlm, text = by_rule["image"], by_rule["text"]
        assert vlm["model"] == "hf:runs/synth-checker/model@0123456789ab" and vlm["region"] == REGION
        assert vlm["related"] == []
        assert text["model"] == "" and text["region"] is None
        assert [(r["start"], r["end"], r["text"]) for r in text["related"]] == \
            [(REPORT.index("Small right"), REPORT.index("effusion.") + 9, "Small right pleural effusion.")]
        assert s.verify().ok
        rows = {r["evidence"]: r for r in s.flag_rows(config_key=key) if r["study_key"] == s.study_key("src-1")}
        assert rows["image"]["model"].startswith("hf:") and json.loads(rows["image"]["region"]) == REGION
        assert json.loads(rows["text"]["related"])[0]["text"] == "Small right pleural effusion."
        pub = [r for r in s.results_to_publish(key) if r["study_key"] == s.study_key("src-1")]
        assert pub == []  # no Study Instance UID: nothing to publish (the reader still runs over the v9 columns)
        # the chain covers the new columns: each v9 flag's digest is over all fifteen
        row = s.conn.execute("SELECT id FROM flags WHERE evidence='image'").fetchone()
        d = s.conn.execute("SELECT digest FROM chain WHERE kind='flag' AND ref=?", (str(row[0]),)).fetchone()[0]
        cols = chain.KINDS["flag"][2]
        vals = s.conn.execute("SELECT " + ", ".join(f'"{c}"' for c in cols) + " FROM flags WHERE id=?",
                              (row[0],)).fetchone()
        assert d == chain.digest("flag", *vals) != chain.digest("flag", *vals[:-3])
    finally:
        s.close()


def _edit_outside_medmm(db: str, sql: str) -> None:
    con = sqlite3.connect(db)
    trig = con.execute("SELECT sql FROM sqlite_master WHERE name='flags_append_only_update'").fetchone()[0]
    con.execute("DROP TRIGGER flags_append_only_update")
    con.execute(sql)
    con.execute(trig)
    con.commit()
    con.close()


@pytest.mark.parametrize("sql", [
    "UPDATE flags SET model = 'hf:another-model' WHERE evidence = 'image'",
    "UPDATE flags SET region = '{\"x1\": 0, \"y1\": 0, \"x2\": 1, \"y2\": 1}' WHERE evidence = 'image'",
    "UPDATE flags SET related = NULL WHERE rule = 'side_conflict'",  # hide the other side of a conflict
    "UPDATE flags SET model = 'hf:planted' WHERE rule = 'typo'",  # a rule flag (v8-shaped digest) given a model
])
def test_verify_names_an_edit_of_the_provenance(tmp_path, sql):
    db = str(tmp_path / "a.sqlite")
    _filled(db)[0].close()
    _edit_outside_medmm(db, sql)
    with Store(db) as s:
        rep = s.verify()
    assert not rep.ok and any("flag" in p and "changed outside medmm" in p for p in rep.chain_problems), rep


def test_a_v8_store_migrates_to_v9(tmp_path, monkeypatch):
    """Flags stored at v8 keep their chain entries (verify is clean after the migration) and read with no model,
    region or related spans; flags written after it carry them; an edit after it is named."""
    db = str(tmp_path / "a.sqlite")
    with monkeypatch.context() as m:  # medmm as it was at v8: no provenance columns, the v6 flag chain trigger
        m.setattr(store_mod, "SCHEMA_VERSION", 8)
        m.setattr(store_mod, "TRIGGERS", {**store_mod.TRIGGERS, "chain_flags": chain.TRIGGERS["chain_flags"]})
        s = Store(db)
        run_id, key = s.start_run(RunConfig.build("audit", checker="rules"))
        s.record_result(run_id, key, StudyRecord("old", None, {"modality": "CR"}, REPORT), _result(_conflict_flag()))
        s.add_review("dr_a", "true_error", flag_id=1)
        s.close()
        con = sqlite3.connect(db)
        assert "model" not in {r[1] for r in con.execute("PRAGMA table_info(flags)")}
        assert con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == "8"
        con.close()
    with Store(db) as s:
        assert s.schema_version == 9 and not s.trigger_problems()
        assert s.verify().ok, s.verify()
        old = s.study(s.study_key("old"), key)["flags"]
        assert [(f["model"], f["region"], f["related"], f["decision"]) for f in old] == [("", None, [], "true_error")]
        run2, key2 = s.start_run(RunConfig.build("audit", checker="vlm", model="hf:m"))
        s.record_result(run2, key2, StudyRecord("new", None, {"modality": "CR"}, REPORT), _result(_vlm_flag()))
        assert s.study(s.study_key("new"), key2)["flags"][0]["region"] == REGION
        assert s.verify().ok
    _edit_outside_medmm(db, "UPDATE flags SET related = '[]' WHERE id = 1")
    with Store(db) as s:
        assert not s.verify().ok


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_exports_carry_model_region_related(tmp_path, suffix):
    db = str(tmp_path / "a.sqlite")
    _filled(db)[0].close()
    out = str(tmp_path / f"flags{suffix}")
    assert export(db, out) == 3
    if suffix == ".csv":
        table = pd.read_csv(out, keep_default_na=False)
    elif suffix == ".parquet":
        table = pd.read_parquet(out)
    else:
        table = pd.DataFrame([json.loads(ln) for ln in open(out, encoding="utf-8")])
    rows = {r["evidence"] + "|" + r["type"]: r for r in table.to_dict(orient="records")}
    vlm = rows["image|laterality"]
    assert vlm["model"] == "hf:runs/synth-checker/model@0123456789ab" and json.loads(vlm["region"]) == REGION
    assert json.loads(rows["text|laterality"]["related"])[0]["text"] == "Small right pleural effusion."
    assert not rows["text|transcription"]["model"]
    redacted = str(tmp_path / f"r{suffix}")
    export(db, redacted, redact=True)
    if suffix == ".jsonl":
        assert all("related" not in json.loads(ln) for ln in open(redacted, encoding="utf-8"))
