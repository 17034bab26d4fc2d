"""One file policy for every tree medmm walks (issue 14, finding 3): symlinks out of the root,
FIFOs and devices are never opened, report files have a size limit, and a 1,200-level tree is
skipped with a reason instead of ending the walk with RecursionError. Checked on the walker
itself and through its users: the imaging scan, `medmm audit` folder inputs and `medmm inject`."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from medmm.audit.runner import audit, iter_inputs
from medmm.cli import main
from medmm.errors import InputError
from medmm.imaging.files import MAX_DEPTH, REPORT_MAX_BYTES, read_limited, walk
from medmm.imaging.index import scan
from medmm.reports.corpus import read_corpus

SECRET = "Other patient SECRETWORD: large mass in the left lung."
REPORT = "FINDINGS: Lungs are clear. No pleural effusion.\nIMPRESSION: No acute disease.\n"


def _device(path: Path) -> bool:
    """A character device like /dev/zero inside the tree (needs root); False where not allowed."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 5))
        return True
    except (PermissionError, OSError):
        return False


_DEEP_TREES: list[Path] = []


def _deep(root: Path, levels: int) -> Path:
    """A chain of ``levels`` folders under ``root``, removed by the autouse fixture below (pytest's own
    tmp cleanup, shutil.rmtree, is recursive and would hit RecursionError on it)."""
    here = root
    _DEEP_TREES.append(root / "d")
    for _ in range(levels):
        here = here / "d"
        os.mkdir(here)  # one level at a time: makedirs recurses
    (here / "deep.txt").write_text(REPORT)
    return here


def _remove_iteratively(top: Path) -> None:
    folders, stack = [], [str(top)]
    while stack:
        folder = stack.pop()
        folders.append(folder)
        for entry in os.scandir(folder):
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
            else:
                os.unlink(entry.path)
    for folder in reversed(folders):
        os.rmdir(folder)


@pytest.fixture(autouse=True)
def _remove_deep_trees():
    yield
    while _DEEP_TREES:
        top = _DEEP_TREES.pop()
        if top.exists():
            _remove_iteratively(top)


def _hostile_tree(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """root/ with a good report, and one of each hostile entry; returns root and name -> expected reason."""
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "report.txt").write_text(SECRET)
    (root / "a_good.txt").write_text(REPORT)
    os.symlink(outside / "report.txt", root / "b_link_out.txt")
    os.symlink(root / "a_good.txt", root / "c_link_in.txt")
    os.symlink(outside, root / "d_dirlink")
    os.mkfifo(root / "e_fifo.txt")
    (root / "f_big.txt").write_bytes(b"x" * (REPORT_MAX_BYTES + 1))
    os.symlink(tmp_path / "nowhere", root / "g_broken.txt")
    expected = {
        "b_link_out.txt": "outside the scanned root",
        "d_dirlink": "symlinked folder",
        "e_fifo.txt": "not a regular file",
        "f_big.txt": "limit",
        "g_broken.txt": "outside the scanned root",
    }
    if _device(root / "h_zero.txt"):
        expected["h_zero.txt"] = "not a regular file"
    return root, expected


@pytest.mark.timeout(30)
def test_walk_skips_each_hostile_entry_with_its_reason(tmp_path):
    root, expected = _hostile_tree(tmp_path)
    got = {os.path.basename(p): r for p, r in walk(str(root), max_bytes=REPORT_MAX_BYTES)}
    assert got["a_good.txt"] is None and got["c_link_in.txt"] is None  # a link inside the root is fine
    for name, why in expected.items():
        assert got[name] is not None and why in got[name], (name, got[name])
    assert set(got) == {"a_good.txt", "c_link_in.txt", *expected}


def test_walk_suffix_filter_and_hidden_files(tmp_path):
    (tmp_path / "r.TXT").write_text(REPORT)
    (tmp_path / ".hidden.txt").write_text(REPORT)
    (tmp_path / "im.dcm").write_bytes(b"\0")
    assert [os.path.basename(p) for p, _ in walk(str(tmp_path), suffixes=(".txt",))] == ["r.TXT"]
    assert {os.path.basename(p) for p, _ in walk(str(tmp_path), skip_hidden=False)} == {"r.TXT", ".hidden.txt", "im.dcm"}


def test_walk_order_is_depth_first_sorted(tmp_path):
    for rel in ("b/2.txt", "b/1.txt", "a/z/9.txt", "a/0.txt", "top.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    rels = [os.path.relpath(p, tmp_path) for p, _ in walk(str(tmp_path))]
    assert rels == ["top.txt", "a/0.txt", "a/z/9.txt", "b/1.txt", "b/2.txt"]


def test_a_1200_level_tree_is_skipped_with_a_reason_not_fatal(tmp_path):
    (tmp_path / "top.txt").write_text(REPORT)
    _deep(tmp_path, 1200)
    with pytest.raises(RecursionError):  # what os.walk (recursive in 3.11) does to the same tree
        list(os.walk(tmp_path))
    results = list(walk(str(tmp_path)))
    assert (str(tmp_path / "top.txt"), None) in results
    deep = [(p, r) for p, r in results if r]
    assert len(deep) == 1 and f"more than {MAX_DEPTH} levels" in deep[0][1]
    assert deep[0][0].count(os.sep + "d") == MAX_DEPTH + 1


def test_imaging_scan_survives_a_deep_tree(tmp_path, make_series):
    folder, _, _ = make_series(n=3)
    _deep(Path(folder), MAX_DEPTH + 10)
    table = scan(folder, workers=1).table
    assert int(table[table.status == "ok"].n_files.sum()) == 3
    assert table[table.status == "skipped"].reason.str.contains("levels below the root").any()


@pytest.mark.timeout(30)
def test_read_limited_refuses_fifo_device_and_large(tmp_path):
    root, expected = _hostile_tree(tmp_path)
    assert read_limited(str(root / "a_good.txt"), REPORT_MAX_BYTES) == REPORT.encode()
    with pytest.raises(InputError, match="not a regular file"):
        read_limited(str(root / "e_fifo.txt"), REPORT_MAX_BYTES)  # opened non-blocking: no hang
    with pytest.raises(InputError, match="limit"):
        read_limited(str(root / "f_big.txt"), REPORT_MAX_BYTES)
    if "h_zero.txt" in expected:
        with pytest.raises(InputError, match="not a regular file"):
            read_limited(str(root / "h_zero.txt"), REPORT_MAX_BYTES)


def _study_tree(tmp_path: Path) -> tuple[Path, bool]:
    """Audit folder: one good study and one hostile study per attack; returns root, device-made."""
    root = tmp_path / "audit"
    outside = tmp_path / "other_patient"
    outside.mkdir(parents=True)
    (outside / "report.txt").write_text(SECRET)
    studies = {name: root / name for name in ("good", "link", "fifo", "big", "deep", "dev")}
    for p in studies.values():
        p.mkdir(parents=True)
    (studies["good"] / "report.txt").write_text(REPORT)
    os.symlink(outside / "report.txt", studies["link"] / "report.txt")
    os.mkfifo(studies["fifo"] / "report.txt")
    (studies["big"] / "report.txt").write_bytes(b"No acute disease. " * (REPORT_MAX_BYTES // 10))
    (studies["deep"] / "report.txt").write_text(REPORT)
    _deep(studies["deep"], MAX_DEPTH + 10)
    made = _device(studies["dev"] / "report.txt")
    os.symlink(outside, root / "zz_linked_study")
    return root, made


@pytest.mark.timeout(60)
def test_audit_folder_inputs_follow_the_policy(tmp_path):
    root, made_device = _study_tree(tmp_path)
    items = {i.study_id: i for i in iter_inputs(str(root))}
    assert items["good"].problem is None and items["good"].report_path.endswith("good/report.txt")
    assert "outside the scanned root" in items["link"].problem and items["link"].report_path is None
    assert "not a regular file" in items["fifo"].problem
    assert "limit" in items["big"].problem
    assert items["deep"].problem is None  # the deep folder is not read, the study's own report is
    assert items["zz_linked_study"].problem == "symlinked study folder not followed"
    if made_device:
        assert "not a regular file" in items["dev"].problem

    db = str(tmp_path / "store.sqlite")
    summary = audit(str(root), db, workers=1, progress=False)
    assert (summary.studies, summary.failures) == (2, len(items) - 2)  # good + deep are checked
    con = sqlite3.connect(db)
    tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    cells = [str(v) for t in tables for row in con.execute(f'SELECT * FROM "{t}"') for v in row if v is not None]
    assert cells and not [c for c in cells if "SECRETWORD" in c]


@pytest.mark.timeout(30)
def test_audit_manifest_report_paths_are_checked(tmp_path):
    fifo = tmp_path / "r.fifo"
    os.mkfifo(fifo)
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"study_id": "a", "report_path": str(fifo)}) + "\n"
                        + json.dumps({"study_id": "b", "report_path": str(tmp_path / "missing.txt")}) + "\n")
    items = {i.study_id: i for i in iter_inputs(str(manifest))}
    assert "not a regular file" in items["a"].problem
    assert items["b"].problem is None  # missing files are named by the check itself


@pytest.mark.timeout(60)
def test_inject_folder_corpus_follows_the_policy(tmp_path, capsys):
    root, expected = _hostile_tree(tmp_path)
    _deep(root, MAX_DEPTH + 10)
    corpus = read_corpus(str(root))
    assert [r["id"] for r in corpus.rows] == ["a_good.txt", "c_link_in.txt"]
    reasons = dict(corpus.skipped)
    assert any("levels below the root" in r for r in reasons.values())
    for name in ("b_link_out.txt", "e_fifo.txt", "f_big.txt"):
        assert name in {os.path.basename(p) for p in reasons}
    out = tmp_path / "injected.jsonl"
    assert main(["inject", str(root), "--out", str(out)]) == 0
    assert "SECRETWORD" not in out.read_text() and len(out.read_text().splitlines()) == 2
