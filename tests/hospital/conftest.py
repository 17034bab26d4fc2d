"""A real PACS for the hospital tests: Debian's Orthanc with its DICOMweb plugin, started as a plain process.

Each test gets its own Orthanc (temporary storage, free HTTP and DICOM ports, authentication on, remote
access off, the DICOMweb plugin loaded; ~0.3 s to start) and it is stopped after the test. The tests
skip with the reason when Orthanc or its plugin is not installed (``.ci/run`` installs both with apt-get).
"""

from __future__ import annotations

import glob
import json
import os
import socket
import subprocess
import time
import urllib.request
from base64 import b64encode
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ORTHANC = "/usr/sbin/Orthanc"
PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
USER, PASSWORD = "auditor", "s3cret-Pw-19"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Orthanc:
    root: Path
    http_port: int
    dicom_port: int
    proc: subprocess.Popen | None = None
    log: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/dicom-web"

    @property
    def spec(self) -> str:
        return f"dicomweb:{self.url}"

    def start(self) -> None:
        config = {"Name": "medmm-test", "StorageDirectory": str(self.root / "db"), "IndexDirectory": str(self.root / "db"),
                  "HttpPort": self.http_port, "DicomPort": self.dicom_port, "DicomAet": "ORTHANC",
                  "RemoteAccessAllowed": False, "AuthenticationEnabled": True, "RegisteredUsers": {USER: PASSWORD},
                  "Plugins": [PLUGIN], "DicomWeb": {"Enable": True, "Root": "/dicom-web/"}, "SaveJobs": False,
                  "DicomAlwaysAllowFind": True, "DicomAlwaysAllowGet": True, "DicomAlwaysAllowStore": True,
                  "HttpTimeout": 10, "ConcurrentJobs": 1, "DicomCheckCalledAet": True}
        cfg = self.root / "orthanc.json"
        cfg.write_text(json.dumps(config))
        logf = open(self.root / "orthanc.log", "ab")  # noqa: SIM115 - closed when the process ends
        self.proc = subprocess.Popen([ORTHANC, str(cfg)], stdout=logf, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Orthanc exited: {(self.root / 'orthanc.log').read_text()[-2000:]}")
            try:
                self.get("/system")
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("Orthanc did not answer within 20 s")

    def stop(self) -> None:
        """Kill it (as a crash or a power cut would: Orthanc's index is SQLite, safe against that; a graceful stop
        takes ~3 s)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def get(self, path: str) -> object:
        req = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}")
        req.add_header("Authorization", "Basic " + b64encode(f"{USER}:{PASSWORD}".encode()).decode())
        with urllib.request.urlopen(req, timeout=5) as r:  # noqa: S310 - a local test server
            return json.loads(r.read())

    def upload(self, folder: str) -> int:
        """STOW every DICOM file under ``folder`` (through medmm's own client)."""
        import pydicom

        from medmm.hospital.dicomweb import DicomwebPacs
        from medmm.hospital.net import Credentials

        pacs = DicomwebPacs(self.url, Credentials(USER, PASSWORD))
        files = sorted(glob.glob(os.path.join(folder, "**", "*.dcm"), recursive=True))
        for i in range(0, len(files), 64):
            pacs.store([pydicom.dcmread(f) for f in files[i:i + 64]])
        return len(files)


def _installed() -> str | None:
    if not os.path.exists(ORTHANC):
        return f"{ORTHANC} is not installed (apt-get install orthanc orthanc-dicomweb; .ci/run does it)"
    if not os.path.exists(PLUGIN):
        return f"the Orthanc DICOMweb plugin {PLUGIN} is not installed (apt-get install orthanc-dicomweb)"
    return None


@pytest.fixture
def orthanc(tmp_path):
    reason = _installed()
    if reason:
        pytest.skip(reason)
    server = Orthanc(tmp_path / "orthanc", _free_port(), _free_port())
    server.root.mkdir()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def synth12(tmp_path_factory):
    """12 small synthetic studies (CT, chest radiographs, brain MR) with accession numbers: generated once."""
    from medmm.synth.generate import SMALL, synthesize

    out = tmp_path_factory.mktemp("synth12")
    synthesize(str(out), 12, seed=19, workers=1, config=SMALL)
    return out
