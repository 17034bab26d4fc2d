"""No PHI in logs: the demo, then the imaging, audit, check and deid commands on studies stamped with
distinctive patient data, run with every process of the tree logging at DEBUG (a ``sitecustomize`` on
PYTHONPATH configures logging in the parent, the forkserver and every pool worker). Everything logged
or written to stderr is compared with the patient names, IDs, birth dates and accession numbers read
back from the written DICOM headers and with every sentence of the written reports.

stdout is not a log: the demo prints a report and ``medmm check`` quotes flagged text there on purpose.
"""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pydicom
import pytest

SITECUSTOMIZE = """
import logging, sys
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="LOG %(process)d %(name)s %(levelname)s %(message)s")
"""

DRIVER = textwrap.dedent("""
    import glob, os, sys
    import pydicom
    from medmm.cli import main as cli
    from medmm.demo import run

    STAMP = {"PatientName": "LOGLEAK^QUENTINA^MARIE", "PatientID": "MRNLOG7734", "PatientBirthDate": "19391231",
             "AccessionNumber": "ACCLOG99812", "ReferringPhysicianName": "HOUSEWRIGHT^GREGORIO"}
    SENTENCE = "Patient Quentina Logleak was seen by Dr. Housewright on 12/31/2023."

    if __name__ == "__main__":
        out = sys.argv[1]
        assert run(out, n=3, seed=0) == 0
        synth = os.path.join(out, "synthetic")
        for path in glob.glob(os.path.join(synth, "**", "*.dcm"), recursive=True):
            ds = pydicom.dcmread(path)
            for k, v in STAMP.items():
                setattr(ds, k, v)
            ds.save_as(path)
        for path in glob.glob(os.path.join(synth, "studies", "*", "report.txt")):
            with open(path, "a", encoding="utf-8") as fh:
                fh.write("\\n" + SENTENCE + "\\n")
        study = sorted(glob.glob(os.path.join(synth, "studies", "*")))[0]
        ct = os.path.join(synth, "studies", "S0001", "ct")
        steps = [["info", ct], ["scan", synth, "--out", os.path.join(out, "index2.csv")],
                 ["convert", ct, os.path.join(out, "ct2.nii.gz")], ["render", ct, "--out", os.path.join(out, "r.png")],
                 ["audit", os.path.join(synth, "studies"), "--db", os.path.join(out, "audit2.sqlite"), "--quiet"],
                 ["export", "--db", os.path.join(out, "audit2.sqlite"), "--out", os.path.join(out, "f2.csv")],
                 ["check", os.path.join(study, "report.txt"), "--dicom", ct],
                 ["deid", synth, os.path.join(out, "deid"), "--seed", "s", "--allow-burned-in"]]
        for argv in steps:
            print("STEP", argv[0], "rc", cli(["--debug", *argv]), flush=True)
""")


def _phi_values(out: Path) -> set[str]:
    """PHI read back from what was written: header values (and name components) and report sentences."""
    values: set[str] = set()
    for path in glob.glob(str(out / "synthetic" / "**" / "*.dcm"), recursive=True):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        for keyword in ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber", "ReferringPhysicianName"):
            value = str(ds.get(keyword) or "")
            if value:
                values.add(value)
                values.update(part for part in re.split(r"[\^ ]", value) if len(part) >= 4)
    reports = [json.loads(line)["report"] for line in open(out / "synthetic" / "manifest.jsonl", encoding="utf-8")]
    reports += [p.read_text(encoding="utf-8") for p in (out / "synthetic" / "studies").glob("*/report.txt")]
    for report in reports:
        values.update(s.strip() for s in re.split(r"(?<=[.!?])\s+|\n", report) if len(s.strip()) >= 25)
    return values


@pytest.mark.slow
def test_no_phi_in_any_log_of_the_demo_and_commands(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    out = tmp_path / "demo"
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(repo)]), "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, str(driver), str(out)], capture_output=True, text=True, env=env,
                          timeout=900, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "LOG " in proc.stderr  # logging really was at DEBUG in the run (third-party debug lines)
    assert proc.stdout.count("STEP ") == 8 and "rc 3" not in proc.stdout, proc.stdout[-2000:]
    phi = _phi_values(out)
    assert {"LOGLEAK^QUENTINA^MARIE", "MRNLOG7734", "19391231", "ACCLOG99812"} <= phi
    assert any("Quentina Logleak" in v for v in phi) and len(phi) > 20
    leaks = sorted(v for v in phi if v in proc.stderr)
    assert not leaks, [(v, proc.stderr[max(0, proc.stderr.find(v) - 200):proc.stderr.find(v) + 50]) for v in leaks[:3]]
