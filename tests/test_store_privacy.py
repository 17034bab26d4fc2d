"""No path or patient-named folder leaves the review store by default (exports, app pages, logs), and the
store is created owner-only. Study folders in hospitals are often named after the patient."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys

import pandas as pd
import pytest

from medmm.app.auth import add_user
from medmm.audit.store import Store

NAMES = ("DOE_JANE", "MRN123456", "ROE_RICHARD", "MRN654321")
USER, PASSWORD = "dr_priv", "a-long-password"
APP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "apps", "report_checker.py")


@pytest.fixture(autouse=True)
def _restore_main_module():
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture
def patient_folders(tmp_path, make_series):
    root = tmp_path / "archive_DOE_JANE"
    good, _, _ = make_series(n=3, rows=8, cols=8, name="g")
    a = root / "STUDY_DOE_JANE_MRN123456"
    shutil.copytree(good, a / "CT_DOE_JANE")
    (a / "report_DOE_JANE.txt").write_text("FINDINGS: Small left pleural effusion.\n\nIMPRESSION: Small right pleural effusion.")
    b = root / "STUDY_ROE_RICHARD_MRN654321"
    b.mkdir()
    (b / "ROE_RICHARD.dcm").write_bytes(b"\x00" * 300)  # cannot be shown: the app must not name it
    (b / "report.txt").write_text("FINDINGS: No pneumothorax.\n\nIMPRESSION: Left pneumothorax.")
    return root


def _cli(*args: str, cwd: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    return subprocess.run([sys.executable, "-m", "medmm.cli", *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=300)


def _leaks(text: str) -> list[str]:
    return [n for n in NAMES if n in text]


def test_patient_named_folders_stay_inside_the_store(patient_folders, tmp_path):
    db = tmp_path / "store" / "audit.sqlite"
    db.parent.mkdir()
    run = _cli("audit", str(patient_folders), "--db", str(db), "--workers", "1", "--quiet", cwd=str(tmp_path))
    assert run.returncode == 0, run.stderr
    assert not _leaks(run.stdout + run.stderr)

    # the store holds the locations (the viewer needs them) and is owner-only, side files included
    with Store(str(db)) as s:
        assert s.conn.execute("SELECT COUNT(*) FROM studies").fetchone()[0] == 2
        assert any("DOE_JANE" in (p or "") for (p,) in s.conn.execute("SELECT source_path FROM studies"))
        s.add_review("dr_a", "true_error", flag_id=s.conn.execute("SELECT id FROM flags LIMIT 1").fetchone()[0])
        for side in ("", "-wal", "-shm"):
            if os.path.exists(str(db) + side):
                assert stat.S_IMODE(os.stat(str(db) + side).st_mode) == 0o600, side

    # default exports: no path, no folder name, in any format
    for fmt in ("csv", "jsonl", "parquet"):
        out = tmp_path / f"flags.{fmt}"
        res = _cli("export", "--db", str(db), "--out", str(out), cwd=str(tmp_path))
        assert res.returncode == 0, res.stderr
        text = pd.read_parquet(out).to_csv() if fmt == "parquet" else out.read_text()
        assert "effusion" in text or "pneumothorax" in text  # the flags are there
        assert not _leaks(text) and str(patient_folders) not in text and "source_path" not in text
        assert not _leaks(res.stderr + res.stdout)
    # opting in does carry them (the check above could fail)
    out = tmp_path / "with_paths.csv"
    assert _cli("export", "--db", str(db), "--out", str(out), "--with-paths", cwd=str(tmp_path)).returncode == 0
    assert "DOE_JANE" in out.read_text()


def _all_text(at) -> str:
    """Everything an AppTest run put on the page (element protos, widget options included)."""
    parts = []

    def walk(node):
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(parts)


def test_app_pages_show_no_path_or_folder_name(patient_folders, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from medmm.audit.runner import audit

    db = tmp_path / "a.sqlite"
    audit(str(patient_folders), str(db), workers=1, progress=False)
    add_user(str(tmp_path / "users.yaml"), USER, "admin", PASSWORD)
    (tmp_path / "app.yaml").write_text("db: a.sqlite\nusers_file: users.yaml\nsession_timeout_minutes: 30\n")
    monkeypatch.setenv("MEDMM_APP_CONFIG", str(tmp_path / "app.yaml"))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.text_input(key="login_user").input(USER)
    at.text_input(key="login_password").input(PASSWORD)
    at.button[0].click().run()
    assert not at.exception
    seen = [_all_text(at)]
    with Store(str(db)) as s:
        keys = [w["study_key"] for w in s.worklist()]
    assert len(keys) == 2
    for key in keys:
        at.session_state["study"] = key
        at.sidebar.radio(key="page").set_value("Study").run()
        assert not at.exception
        seen.append(_all_text(at))
    at.sidebar.radio(key="page").set_value("Export").run()
    seen.append(_all_text(at))
    text = "\n".join(seen)
    assert "pleural effusion" in text.lower()  # the study pages did render the reports
    assert "cannot be shown" in text  # the unreadable image was reported ... without its name
    assert not _leaks(text) and str(patient_folders) not in text


def test_a_rule_that_raises_reaches_the_store_as_a_note(tmp_path, monkeypatch):
    """A failing rule is never silently dropped: its note is saved with the result and shown by study()."""
    from medmm.audit import runner
    from medmm.reports import build_checker

    def rule_boom(a, header=None):
        raise RuntimeError("rule exploded")

    # the checker module the runner's build_checker really uses (AppTest may have re-imported modules);
    # default_checker caches one checker per configuration: clear it around the patch
    default_checker = build_checker.__globals__["default_checker"]
    rules_globals = getattr(default_checker, "__wrapped__", default_checker).__globals__
    monkeypatch.setitem(rules_globals, "RULES", (*rules_globals["RULES"], rule_boom))
    monkeypatch.setattr(runner, "_CHECKERS", {})  # no checker cached from an earlier test of this process
    clear = getattr(default_checker, "cache_clear", lambda: None)
    clear()
    try:
        manifest = tmp_path / "m.jsonl"
        manifest.write_text('{"study_id": "s1", "report": "FINDINGS: Small left effusion.\\n\\nIMPRESSION: '
                            'Small left effusion."}\n')
        db = str(tmp_path / "n.sqlite")
        runner.audit(str(manifest), db, workers=1, progress=False)
    finally:
        clear()
    with Store(db) as s:
        key = s.worklist()[0]["study_key"]
        notes = s.study(key)["notes"]
    assert any("rule_boom" in n and "RuntimeError" in n for n in notes), notes
