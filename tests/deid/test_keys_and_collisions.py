"""Issue 20, D1 (never two inputs on one output; the count printed equals the files written) and D2
(the pseudonym key is a random key file created 0600 at first use, stretched; the seed alone never
determines a pseudonym)."""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
import time
from pathlib import Path

import pydicom
import pytest

from medmm.cli import main
from medmm.deid import DeidKey, deid_tree
from medmm.deid.keys import SCRYPT, load_or_create_key_file
from medmm.errors import InputError
from tests.conftest import shipped_file


def _dcm_files(root) -> list[Path]:
    return sorted(p for p in Path(root).rglob("*.dcm"))


# ------------------------------------------------------------------ D1
def _same_sop_pair(folder: Path) -> None:
    """Two different images that share one SOPInstanceUID (a re-export, a broken PACS)."""
    folder.mkdir(parents=True)
    a = pydicom.dcmread(shipped_file("CT_small.dcm"))
    a.save_as(folder / "a.dcm")
    a.PatientName = "OTHER^COPY"
    a.InstanceNumber = 99
    a.save_as(folder / "b.dcm")


def test_two_inputs_with_one_sop_uid_are_both_kept_and_reported(tmp_path, capsys):
    _same_sop_pair(tmp_path / "in")
    out = tmp_path / "out"
    summary = deid_tree(str(tmp_path / "in"), str(out))
    files = _dcm_files(out)
    assert len(files) == 2 == len(summary.written)  # was: "2 de-identified", 1 file written
    assert len(summary.collisions) == 1
    where, holder, kept = summary.collisions[0]
    assert {where, holder} == {"a.dcm", "b.dcm"} and kept.endswith(".1.dcm")
    assert sorted(int(pydicom.dcmread(f).InstanceNumber) for f in files) == [1, 99]
    assert main(["deid", str(tmp_path / "in"), str(tmp_path / "out2")]) == 0
    err = capsys.readouterr().err
    assert "2 DICOM file(s)" in err and "1 name collision(s) kept under new names" in err and "collision: " in err
    assert len(_dcm_files(tmp_path / "out2")) == 2


def test_count_printed_equals_files_written_on_a_tree_with_duplicates(tmp_path):
    src = tmp_path / "in"
    _same_sop_pair(src / "x")
    _same_sop_pair(src / "y")  # four files, one SOPInstanceUID
    (src / "r.txt").write_text("Dictated by Dr. Smith.")
    summary = deid_tree(str(src), str(tmp_path / "out"), seed="s")
    assert len(summary.written) == len(_dcm_files(tmp_path / "out")) == 4
    assert len(summary.texts) == 1 and len(summary.collisions) == 3
    assert not [p for p in Path(tmp_path / "out").rglob(".partial-*")]


def test_rerun_into_the_same_folder_keeps_identical_outputs_and_never_overwrites(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    pydicom.dcmread(shipped_file("CT_small.dcm")).save_as(src / "a.dcm")
    first = deid_tree(str(src), str(tmp_path / "out"), seed="s")
    again = deid_tree(str(src), str(tmp_path / "out"), seed="s")
    assert len(first.written) == 1 and not again.written and len(again.unchanged) == 1
    changed = deid_tree(str(src), str(tmp_path / "out"), seed="s",
                        options=__import__("medmm.deid", fromlist=["DeidOptions"]).DeidOptions(keep_dates_shifted=True))
    assert len(changed.written) == 1 and changed.collisions[0][1] == "an earlier run's output"
    assert len(_dcm_files(tmp_path / "out")) == 2


def test_rerun_of_a_tree_with_a_collision_adds_no_copy(tmp_path):
    """Verifier's probe: the second input of a SOPInstanceUID pair was kept as <name>.1.dcm, and every
    rerun into the same folder added another identical copy (.2, .3, ...) reported as a new collision."""
    _same_sop_pair(tmp_path / "in")
    out = tmp_path / "out"
    first = deid_tree(str(tmp_path / "in"), str(out), seed="s")
    assert len(first.written) == 2 and len(first.collisions) == 1
    for _ in range(2):
        again = deid_tree(str(tmp_path / "in"), str(out), seed="s")
        assert not again.written and not again.collisions and len(again.unchanged) == 2
    assert len(_dcm_files(out)) == 2


# ------------------------------------------------------------------ D2
def _uid_of(out) -> str:
    (f,) = _dcm_files(out)
    return str(pydicom.dcmread(f).SOPInstanceUID)


def test_same_seed_in_two_homes_gives_different_uids(tmp_path, monkeypatch):
    src = tmp_path / "in"
    src.mkdir()
    pydicom.dcmread(shipped_file("CT_small.dcm")).save_as(src / "a.dcm")
    uids = []
    for home in ("home1", "home2"):
        monkeypatch.setenv("MEDMM_DEID_KEY_FILE", str(tmp_path / home / ".medmm" / "deid.key"))
        deid_tree(str(src), str(tmp_path / f"out-{home}"), seed="1")
        uids.append(_uid_of(tmp_path / f"out-{home}"))
    assert uids[0] != uids[1]  # was identical: the key was a function of the seed alone
    monkeypatch.setenv("MEDMM_DEID_KEY_FILE", str(tmp_path / "home1" / ".medmm" / "deid.key"))
    deid_tree(str(src), str(tmp_path / "again"), seed="1")
    assert _uid_of(tmp_path / "again") == uids[0]  # the same key file and seed: reproducible


def test_seed_search_from_one_uid_pair_finds_nothing(tmp_path, monkeypatch):
    """The old attack: try every five-digit seed against one known (original, pseudonym) pair."""
    monkeypatch.setenv("MEDMM_DEID_KEY_FILE", str(tmp_path / "k" / "deid.key"))
    original = "1.2.3.4.5"
    target = DeidKey.from_seed("4242").uid(original)
    old_scheme = [DeidKey(hmac.new(b"medmm-deid-v1", str(s).encode(), hashlib.sha256).digest()).uid(original)
                  for s in range(10000)]
    new_scheme_without_file = [DeidKey(hmac.new(b"medmm-deid-v2", str(s).encode(), hashlib.sha256).digest()).uid(original)
                               for s in range(10000)]
    assert target not in old_scheme and target not in new_scheme_without_file
    assert SCRYPT["n"] >= 2**14
    t0 = time.perf_counter()
    DeidKey.from_seed("4243")
    assert time.perf_counter() - t0 > 0.005  # stretched: each guess costs an scrypt


def test_key_file_created_0600_in_0700_folder_and_loose_files_refused(tmp_path):
    path = tmp_path / "home" / ".medmm" / "deid.key"
    secret, created = load_or_create_key_file(str(path))
    assert created and len(secret) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_or_create_key_file(str(path)) == (secret, False)  # never overwritten
    os.chmod(path, 0o644)
    with pytest.raises(InputError, match="chmod 600"):
        load_or_create_key_file(str(path))
    short = tmp_path / "short.key"
    short.write_text("abcd")
    os.chmod(short, 0o600)
    with pytest.raises(InputError, match="not a de-identification key file"):
        load_or_create_key_file(str(short))


def test_cli_says_when_it_creates_the_key_file(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    pydicom.dcmread(shipped_file("CT_small.dcm")).save_as(src / "a.dcm")
    key = tmp_path / "given.key"
    assert main(["deid", str(src), str(tmp_path / "o"), "--seed", "7", "--key-file", str(key)]) == 0
    assert "created the key file" in capsys.readouterr().err and key.exists()
    assert main(["deid", str(src), str(tmp_path / "o2"), "--seed", "7", "--key-file", str(key)]) == 0
    assert "created the key file" not in capsys.readouterr().err
    assert _uid_of(tmp_path / "o") == _uid_of(tmp_path / "o2")
