"""The `medmm` console script: JSON schema, exit codes, one-line errors without tracebacks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from tests.conftest import DICOMDIR_TESTS, shipped_file


def medmm(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("medmm", path=os.path.dirname(sys.executable))
    cmd = [exe] if exe else [sys.executable, "-m", "medmm.cli"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=120)


def check_json_schema(obj: dict, kind: str) -> None:
    assert obj["kind"] == kind
    for s in obj["series"]:
        assert set(s) >= {"series_uid", "modality", "shape", "spacing", "affine", "photometric", "n_files", "problems"}
        assert isinstance(s["shape"], list) and len(s["spacing"]) == 3
        assert np.asarray(s["affine"]).shape == (4, 4)
        assert isinstance(s["n_files"], int)
        for p in s["problems"]:
            assert set(p) == {"code", "message"}


def test_info_json_dicom_file():
    r = medmm("info", shipped_file("CT_small.dcm"), "--json")
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)
    check_json_schema(obj, "dicom-file")
    assert len(obj["series"]) == 1
    s = obj["series"][0]
    assert s["modality"] == "CT" and s["shape"] == [128, 128, 1] and s["photometric"] == "MONOCHROME2"
    assert [p["code"] for p in s["problems"]] == ["single_slice"]


def test_info_json_series_with_problems():
    r = medmm("info", str(DICOMDIR_TESTS / "98892001"), "--json")
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)
    check_json_schema(obj, "dicom-series")
    codes = [{p["code"] for p in s["problems"]} for s in obj["series"]]
    assert sum("mixed_orientation" in c for c in codes) == 2  # CT2N split in two
    assert set() in codes  # CT5N is clean
    assert sum(s["n_files"] for s in obj["series"]) == 7


def test_info_json_nifti():
    from nibabel.testing import data_path

    r = medmm("info", f"{data_path}/example4d.nii.gz", "--json")
    obj = json.loads(r.stdout)
    check_json_schema(obj, "nifti")
    assert obj["series"][0]["shape"] == [128, 96, 24, 2]
    assert np.allclose(obj["series"][0]["affine"], nib.load(f"{data_path}/example4d.nii.gz").affine, atol=1e-5)


def test_convert_refuses_gap_then_force(tmp_path):
    out = tmp_path / "ct2.nii.gz"
    r = medmm("convert", str(DICOMDIR_TESTS / "77654033" / "CT2"), str(out))
    assert r.returncode == 2 and not out.exists()
    assert "gap" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    # forced: the gap splits the series in two, so one output file is refused with the reason
    r = medmm("convert", str(DICOMDIR_TESTS / "77654033" / "CT2"), str(out), "--force")
    assert r.returncode == 2 and "holds 2 volumes" in r.stderr


def test_convert_and_render(tmp_path):
    out = tmp_path / "ct5n.nii.gz"
    r = medmm("convert", str(DICOMDIR_TESTS / "98892001" / "CT5N"), str(out))
    assert r.returncode == 0, r.stderr
    assert nib.load(out).shape == (16, 16, 5)
    png = tmp_path / "v.png"
    r = medmm("render", str(out), "--window", "abdomen", "--slice", "2", "--out", str(png))
    assert r.returncode == 0, r.stderr
    from PIL import Image

    assert Image.open(png).size == (16, 16)
    r = medmm("render", str(out), "--mip", "--axis", "sagittal", "--out", str(png))
    assert r.returncode == 0, r.stderr
    assert Image.open(png).size == (16, 5)


def test_scan_cli(tmp_path):
    out = tmp_path / "index.parquet"
    r = medmm("scan", str(DICOMDIR_TESTS), "--out", str(out), "--workers", "1")
    assert r.returncode == 0, r.stderr
    import pandas as pd

    t = pd.read_parquet(out)
    assert (t.status == "ok").sum() >= 8 and "files/s" in r.stderr


@pytest.mark.parametrize(
    "args,needle",
    [
        (("info", "/no/such/path"), "no such file"),
        (("render", "__EMPTY__", "--out", "x.png"), "empty file"),
        (("render", "__TEXT__", "--out", "x.png"), "not a DICOM file"),
        (("render", "__CT__", "--window", "banana", "--out", "x.png"), "unknown window"),
        (("scan", "__CT__", "--out", "x.parquet"), "not a folder"),
        (("convert", "__CT__", "out.txt"), ".nii"),
    ],
)
def test_bad_input_exit_code_and_one_line(args, needle, tmp_path):
    empty = tmp_path / "empty.dcm"
    empty.write_bytes(b"")
    text = tmp_path / "t.dcm"
    text.write_text("hello, not an image\n" * 20)
    subst = {"__EMPTY__": str(empty), "__TEXT__": str(text), "__CT__": shipped_file("CT_small.dcm")}
    argv = [subst.get(a, a) for a in args]
    argv = [str(tmp_path / a) if a in ("x.png", "x.parquet", "out.txt") else a for a in argv]
    r = medmm(*argv)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert needle in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_models_build_tiny_and_ask(tmp_path, make_series):
    from PIL import Image

    out = tmp_path / "tiny-llava"
    r = medmm("models", "build-tiny", "--family", "llava", "--out", str(out), "--seed", "3")
    assert r.returncode == 0, r.stderr
    assert (out / "model.safetensors").exists() and (out / "chat_template.jinja").exists()
    folder, _, _ = make_series(n=3, rows=32, cols=32)
    png = tmp_path / "x.png"
    Image.new("RGB", (40, 30), (10, 20, 30)).save(png)
    r = medmm("ask", "--model", f"hf:{out}", "--image", folder, "--image", str(png),
              "--prompt", "Is there a nodule?", "--options", "yes|no", "--json", "--max-new-tokens", "4")
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)
    assert isinstance(obj["text"], str) and set(obj["options"]) == {"yes", "no"}
    assert all(v < 0 for v in obj["options"].values())
    r = medmm("ask", "--model", f"hf:{tmp_path / 'nope'}", "--prompt", "x")
    assert r.returncode == 2 and "no such checkpoint folder" in r.stderr and "Traceback" not in r.stderr


def test_check_json_schema_and_header(tmp_path, make_series):
    report = tmp_path / "r.txt"
    report.write_text("TECHNIQUE: MRI of the chest.\n\nFINDINGS: Small left pleural effusion.\n\n"
                      "IMPRESSION: Small right pleural effusion.\n")
    folder, _, _ = make_series(n=2, rows=8, cols=8)  # a CT series: the report says MRI
    r = medmm("check", str(report), "--dicom", folder, "--json")
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)
    assert set(obj) == {"has_error", "score", "flags"} and obj["has_error"] is True
    for f in obj["flags"]:
        # "related": the other side of a conflict (spans), when the rule has one
        # "model" / "region": the VLM that raised a flag and its decoded box (issue 18): "" and null for rules
        assert set(f) - {"related"} == {"type", "start", "end", "text", "explanation", "confidence", "evidence",
                                        "model", "region"}
        assert f["model"] == "" and f["region"] is None
        assert f["evidence"] in ("text", "header", "image")
    assert {f["type"] for f in obj["flags"]} == {"laterality", "metadata"}
    text = report.read_text()
    assert all(text[f["start"]:f["end"]] == f["text"] for f in obj["flags"])
    header = tmp_path / "h.json"
    header.write_text(json.dumps({"modality": "MR", "body_part": "CHEST", "laterality": None, "view_position": None,
                                  "sex": "F", "extra": 1}))
    r = medmm("check", str(report), "--header", str(header), "--json")
    obj = json.loads(r.stdout)
    assert {f["type"] for f in obj["flags"]} == {"laterality"} and "extra" in r.stderr
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    r = medmm("check", str(bad), "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["has_error"] is False


def test_inject_and_check_eval(tmp_path):
    hand = os.path.join(os.path.dirname(__file__), "data", "hand_reports.txt")
    out = tmp_path / "ds.jsonl"
    r = medmm("inject", hand, "--out", str(out), "--rate", "0.5", "--seed", "2",
              "--types", "laterality,negation,measurement,contradiction,interval,transcription,metadata")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) >= 100 and 30 < sum(r["has_error"] for r in rows) < 80
    err = next(r for r in rows if r["has_error"])["errors"][0]
    assert set(err) >= {"type", "complex", "original_sentence", "edited_sentence", "start", "end"}
    r = medmm("check-eval", str(out), "--out", str(tmp_path / "eval"))
    assert r.returncode == 0, r.stderr
    result = json.loads((tmp_path / "eval" / "check-eval.json").read_text())
    assert result["simple"]["precision"] >= 0.9 and result["simple"]["recall"] >= 0.8
    assert (tmp_path / "eval" / "check-eval.md").read_text().startswith("# Report checker evaluation")
    r = medmm("inject", hand, "--out", str(out), "--types", "spelling")
    assert r.returncode == 2 and "unknown error type" in r.stderr


# --- the CLI is a registry -------------------------------------------------------------------------


def _subcommands(parser):  # name -> sub-parser of an argparse parser's sub-commands
    import argparse

    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def _handlers(parser):  # every handler a (possibly nested) command parser sets
    subs = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    if not subs:
        return [parser.get_default("func")]
    return [h for a in subs for p in a.choices.values() for h in _handlers(p)]


def test_every_command_comes_from_the_registry():
    import ast
    import importlib
    import inspect

    from medmm import cli

    commands = _subcommands(cli.build_parser())
    assert list(commands) == list(cli.COMMANDS)  # nothing is added outside the registry, nothing registered is missing
    for name, sub in commands.items():
        handlers = _handlers(sub)
        assert handlers and all(callable(h) for h in handlers), name
        # declared by a package's module (the one the registry names, or a package module it delegates to),
        # never by medmm.cli itself
        assert cli.COMMANDS[name] != "medmm.cli", name
        assert all(h.__module__.startswith("medmm.") and h.__module__ != "medmm.cli" for h in handlers), name
        assert callable(getattr(importlib.import_module(cli.COMMANDS[name]), "add_parsers", None)), name
    # medmm/cli.py declares no command itself: no add_parser call, no handler
    tree = ast.parse(inspect.getsource(cli))
    calls = {n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
    assert "add_parser" not in calls and "set_defaults" not in calls
    assert not [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("_cmd")]


def test_a_command_loads_only_its_own_package_cli():
    code = ("import sys; from medmm import cli; cli.build_parser(cli._command_of(['info', 'x'])); "
            "print(sorted(m for m in sys.modules if m.startswith('medmm.') and m.endswith('.cli') and m != 'medmm.cli'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['medmm.imaging.cli']"
    # an unknown command gets the full list of choices (exit 2 from argparse, no traceback)
    proc = medmm("no-such-command")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr and "deid" in proc.stderr


def _all_actions(parser):
    for a in parser._actions:
        yield a
        if a.__class__.__name__ == "_SubParsersAction":
            for p in a.choices.values():
                yield from _all_actions(p)


def test_registry_choices_come_from_their_registries():
    from medmm import cli
    from medmm._cli import RegistryChoices
    from medmm.models.tiny import FAMILIES
    from medmm.reports.api import CHECKERS

    actions = list(_all_actions(cli.build_parser()))
    checkers = [a for a in actions if a.dest == "checker"]
    families = [a for a in actions if a.dest == "family"]
    assert len(checkers) == 3 and families  # check, check-eval, audit; models build-tiny
    for a in checkers:
        assert isinstance(a.choices, RegistryChoices) and list(a.choices) == list(CHECKERS)
    for a in families:
        assert isinstance(a.choices, RegistryChoices) and list(a.choices) == list(FAMILIES)
    # a kind the registry does not hold is refused by argparse (exit 2), listing the registry's kinds
    proc = medmm("check", "x.txt", "--checker", "nope")
    assert proc.returncode == 2 and all(k in proc.stderr for k in CHECKERS)


def test_medmm_help_loads_no_registry():
    code = ("import sys; from medmm import cli; cli.build_parser().format_help(); "
            "print([m for m in ('medmm.reports.api', 'medmm.models.tiny', 'torch') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_probe_tasks_come_from_the_task_registry():
    from medmm import cli
    from medmm._cli import RegistryChoices
    from medmm.probe.tasks import TASKS, mode_names, parser_names, prepare_names

    actions = list(_all_actions(cli.build_parser("probe")))
    benches = [a for a in actions if a.dest in ("bench", "kind")]
    assert len(benches) == 3  # probe build KIND, probe run --bench, probe score --bench
    for a in benches:
        assert isinstance(a.choices, RegistryChoices) and list(a.choices) == list(TASKS)
    by_dest = {a.dest: a for a in actions if a.dest in ("mode", "benchmark")}
    assert list(by_dest["mode"].choices) == list(mode_names())
    assert list(by_dest["benchmark"].choices) == list(prepare_names()) == ["probmed", "mediconfusion"]
    parsers = [a for a in actions if a.dest == "parser"]
    assert any(list(a.choices) == list(parser_names()) for a in parsers)
    assert all(isinstance(a.choices, RegistryChoices) for a in parsers)
    # a registered task is what the runner dispatches to: its reader, prompts and scorer
    for task in TASKS.values():
        assert callable(task.load) and callable(task.score_variant) and task.modes and task.parsers
