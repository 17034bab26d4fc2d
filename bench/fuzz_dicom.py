"""Mutation fuzzer for medmm.imaging: the DICOM files shipped with pydicom and pydicom-data, mutated
(bit flips, truncations, length-field corruption, element deletions, huge or nonsense declared sizes,
inserted bytes), through ``describe`` + ``load`` and ``medmm.deid`` per file and ``scan`` per batch folder.

Each case runs in a worker process with a soft timeout (``signal.setitimer`` inside the worker) and a
hard one (the parent kills and replaces a worker that does not answer), under an address-space limit.
Outcomes: ``ok`` (loaded), ``rejected`` (a MedmmError whose message names the file), ``unclear``
(a MedmmError that does not name the file), ``crash`` (any other exception), ``hang`` (a timeout).
The promise: no crash, no hang, no unclear rejection.

    python -m bench.fuzz_dicom --cases 5000 --seed 0          # the long run quoted in SECURITY.md
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import signal
import struct
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

SOFT_TIMEOUT_S = 10.0
HARD_TIMEOUT_S = 30.0
MEMORY_LIMIT = 4 << 30  # bytes of address space per worker
MAX_SEED_BYTES = 2_000_000  # seed files larger than this are left out (speed)
FUZZ_MAX_VOXELS = "50000000"  # the pixel budget inside workers (the default 1e9 would allow 4 GB loads)


# ------------------------------------------------------------------ seeds
def seed_files(max_bytes: int = MAX_SEED_BYTES) -> list[Path]:
    """DICOM files shipped with pydicom and pydicom-data (never get_testdata_files('*'): it goes online)."""
    import data_store
    import pydicom

    roots = [Path(pydicom.__file__).parent / "data" / "test_files", Path(data_store.__file__).parent / "data"]
    out = []
    for root in roots:
        for p in sorted(root.rglob("*")):
            if p.is_file() and p.suffix.lower() in (".dcm", "") and p.stat().st_size <= max_bytes \
                    and p.name.upper() != "DICOMDIR" and not p.name.startswith("."):
                out.append(p)
    return out


# ------------------------------------------------------------------ mutations
@dataclass(frozen=True)
class Element:
    header_start: int  # offset of the tag
    value_start: int
    length: int  # declared (0xFFFFFFFF = undefined)
    length_bytes: int  # 2 or 4


def elements(data: bytes) -> list[Element]:
    """Top-level and file-meta elements with their byte offsets, read by pydicom from the file bytes."""
    import io
    import warnings

    import pydicom

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(data), force=True, defer_size=64)
    except Exception:
        return []
    out = []
    for source in (getattr(ds, "file_meta", None), ds):
        if source is None:
            continue
        for tag in list(source.keys()):
            try:
                raw = source.get_item(tag, keep_deferred=True)
            except Exception:
                continue
            tell = getattr(raw, "value_tell", None)
            if tell is None:
                continue
            implicit = getattr(raw, "is_implicit_VR", False)
            vr = getattr(raw, "VR", None) or ""
            long_form = implicit or vr in ("OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV")
            header = 8 if implicit or not long_form else 12
            out.append(Element(tell - header, tell, int(getattr(raw, "length", 0) or 0), 4 if long_form else 2))
    return [e for e in out if 0 <= e.header_start < len(data)]


def _bit_flips(data: bytearray, rng: random.Random) -> str:
    if not data:
        return "bit-flip"
    span = len(data) if rng.random() < 0.2 else min(len(data), 4096)
    for _ in range(rng.randint(1, 16)):
        i = rng.randrange(span)
        data[i] ^= 1 << rng.randrange(8)
    return "bit-flip"


def _truncate(data: bytearray, rng: random.Random) -> str:
    if len(data) > 1:
        del data[rng.randrange(1, len(data)):]
    return "truncate"


def _length_field(data: bytearray, rng: random.Random, elems: list[Element]) -> str:
    if not elems:
        return _bit_flips(data, rng)
    e = rng.choice(elems)
    at = e.value_start - e.length_bytes
    if e.length_bytes == 2:
        value = rng.choice([0, 1, 0xFFFF, 0x7FFF, rng.randrange(0x10000)])
        data[at:at + 2] = struct.pack("<H", value)
    else:
        value = rng.choice([0, 1, 0xFFFFFFFF, 0xFFFFFFFE, 0x7FFFFFFF, 0x10000000, rng.randrange(1 << 32)])
        data[at:at + 4] = struct.pack("<I", value)
    return "length-field"


def _delete_element(data: bytearray, rng: random.Random, elems: list[Element]) -> str:
    defined = [e for e in elems if e.length != 0xFFFFFFFF and e.value_start + e.length <= len(data)]
    if not defined:
        return _truncate(data, rng)
    e = rng.choice(defined)
    del data[e.header_start:e.value_start + e.length]
    return "tag-delete"


def _insert(data: bytearray, rng: random.Random) -> str:
    at = rng.randrange(len(data) + 1)
    data[at:at] = rng.choice([b"\x00" * rng.randint(1, 64), b"\xff" * rng.randint(1, 64),
                              bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))])
    return "insert"


HUGE = {
    "Rows": [0, 1, 65535, 40000], "Columns": [0, 1, 65535, 40000],
    "NumberOfFrames": ["0", "-1", "2147483647", "1000000", "abc", "1.5", "49999"],
    "BitsAllocated": [0, 1, 7, 12, 64, 65535], "BitsStored": [0, 17, 65535], "SamplesPerPixel": [0, 2, 4, 65535],
    "PixelRepresentation": [2, 65535], "PlanarConfiguration": [1, 7],
    "PhotometricInterpretation": ["RGB", "YBR_FULL_422", "PALETTE COLOR", "MONOCHROME1", "NONSENSE"],
    "RescaleSlope": ["0", "1e308", "-1e308", "nan"], "WindowWidth": ["0", "-1"],
    "ImageOrientationPatient": [["0", "0", "0", "0", "0", "0"], ["1", "0", "0", "1", "0", "0"]],
    "PixelSpacing": [["0", "0"], ["-1", "1e308"]],
}


def _declared_sizes(data: bytearray, rng: random.Random) -> str:
    """Rewrite size and pixel-description attributes through pydicom (values a length patch cannot make)."""
    import io
    import warnings

    import pydicom

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(bytes(data)), force=True)
            for keyword in rng.sample(sorted(HUGE), rng.randint(1, 3)):
                setattr(ds, keyword, rng.choice(HUGE[keyword]))
            if rng.random() < 0.2 and getattr(ds, "file_meta", None) is not None:
                ds.file_meta.TransferSyntaxUID = rng.choice([
                    "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.4.50",
                    "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.5", "1.2.3.4"])
            out = io.BytesIO()
            ds.save_as(out, enforce_file_format=False)
    except Exception:
        return _bit_flips(data, rng)
    data[:] = out.getvalue()
    return "declared-size"


def mutate(seed: bytes, rng: random.Random) -> tuple[bytes, str]:
    data = bytearray(seed)
    if not data:
        return b"", "empty"
    kind = rng.choice(["bit-flip", "truncate", "length-field", "tag-delete", "insert", "declared-size", "declared-size"])
    if kind in ("length-field", "tag-delete"):
        elems = elements(bytes(data))
        kind = (_length_field if kind == "length-field" else _delete_element)(data, rng, elems)
    else:
        kind = {"bit-flip": _bit_flips, "truncate": _truncate, "insert": _insert,
                "declared-size": _declared_sizes}[kind](data, rng)
    if rng.random() < 0.15:  # a second mutation on top
        kind += "+" + {0: _bit_flips, 1: _truncate, 2: _insert}[rng.randrange(3)](data, rng)
    return bytes(data), kind


# ------------------------------------------------------------------ running cases
class _Timeout(Exception):
    pass


def _alarm(signum, frame):  # noqa: ANN001
    raise _Timeout()


def _classify(path: str, fn) -> tuple[str, str]:  # noqa: ANN001
    from medmm.errors import MedmmError

    signal.setitimer(signal.ITIMER_REAL, SOFT_TIMEOUT_S)
    try:
        fn()
        return "ok", ""
    except _Timeout:
        return "hang", f"over {SOFT_TIMEOUT_S:.0f} s"
    except MedmmError as exc:
        msg = str(exc)
        return ("rejected" if msg and path in msg else "unclear"), f"{type(exc).__name__}: {msg[:300]}"
    except BaseException as exc:  # noqa: BLE001 - the fuzzer's job is to find these
        tb = traceback.extract_tb(exc.__traceback__)
        where = next((f"{Path(f.filename).name}:{f.lineno}" for f in reversed(tb) if "medmm" in f.filename), "?")
        return "crash", f"{type(exc).__name__} at {where}: {str(exc)[:200]}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def _case(task: tuple[str, str]) -> tuple[str, str]:
    kind, path = task
    from medmm.imaging import describe, load

    if kind == "file":
        outcome = _classify(path, lambda: describe(path))
        if outcome[0] == "ok":
            outcome = _classify(path, lambda: load(path))
        deid = _classify(path, lambda: _deid(path))  # de-identification reads the same hostile bytes
        return deid if deid[0] in ("crash", "hang") else outcome
    from medmm.imaging.index import scan

    def _scan() -> None:
        result = scan(path, workers=1)
        n = sum(1 for f in os.listdir(path))
        assert result.n_files == n, f"scan accounted for {result.n_files} of {n} files"
        reasons = result.table[result.table.status == "skipped"].reason
        assert reasons.notna().all() and (reasons.str.len() > 0).all(), "a skipped file without a reason"

    status, detail = _classify(path, _scan)
    return ("rejected" if status == "unclear" else status), detail  # a scan error names the folder


def _deid(path: str) -> None:
    """medmm.deid on the file: a per-file error is recorded by deid_tree; an unexpected one is a crash."""
    from medmm.deid import DeidOptions, deid_tree

    with tempfile.TemporaryDirectory(prefix="medmm-fuzz-deid-") as out:
        summary = deid_tree(path, out, options=DeidOptions(allow_burned_in=True))  # a run key: no key file
        unexpected = [why for _, why in summary.skipped if why.startswith("unexpected error")]
        if unexpected:
            raise RuntimeError(f"deid: {unexpected[0]}")


def _worker(conn) -> None:  # noqa: ANN001
    import resource

    os.environ["MEDMM_MAX_VOXELS"] = FUZZ_MAX_VOXELS
    try:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    except (ValueError, OSError):
        pass
    signal.signal(signal.SIGALRM, _alarm)
    import medmm.imaging.index  # noqa: F401 - warm the imports before the first timed case

    while True:
        task = conn.recv()
        if task is None:
            return
        conn.send(_case(task))


class Pool:
    """Workers that can be killed: a case that does not answer within the hard timeout is a hang."""

    def __init__(self, n: int) -> None:
        self.ctx = mp.get_context("spawn")
        self.workers = [self._start() for _ in range(n)]

    def _start(self):  # noqa: ANN202
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=_worker, args=(child,), daemon=True)
        proc.start()
        return proc, parent

    def run(self, tasks: list[tuple[str, str]]) -> list[tuple[str, str]]:
        results: list[tuple[str, str] | None] = [None] * len(tasks)
        pending = list(enumerate(tasks))
        busy: dict[int, tuple[int, float]] = {}
        while pending or busy:
            for w, (proc, conn) in enumerate(self.workers):
                if w not in busy and pending:
                    i, task = pending.pop(0)
                    conn.send(task)
                    busy[w] = (i, time.monotonic())
            for w, (i, started) in list(busy.items()):
                proc, conn = self.workers[w]
                if conn.poll(0.005):
                    try:
                        results[i] = conn.recv()
                    except EOFError:
                        results[i] = ("crash", f"worker died (exit code {proc.exitcode}): killed by the memory limit?")
                        self._replace(w)
                    del busy[w]
                elif not proc.is_alive():
                    results[i] = ("crash", f"worker died (exit code {proc.exitcode})")
                    self._replace(w)
                    del busy[w]
                elif time.monotonic() - started > HARD_TIMEOUT_S:
                    results[i] = ("hang", f"no answer in {HARD_TIMEOUT_S:.0f} s; worker killed")
                    self._replace(w)
                    del busy[w]
        return results  # type: ignore[return-value]

    def _replace(self, w: int) -> None:
        proc, conn = self.workers[w]
        proc.kill()
        proc.join()
        self.workers[w] = self._start()

    def close(self) -> None:
        for proc, conn in self.workers:
            try:
                conn.send(None)
            except (BrokenPipeError, OSError):
                pass
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()


@dataclass
class FuzzReport:
    cases: int
    seeds: int
    outcomes: Counter
    by_kind: dict[str, Counter]
    failures: list[tuple[str, str, str, str]]  # (seed file, mutation, outcome, detail)
    scans: int
    seconds: float

    def line(self) -> str:
        return (f"{self.cases} mutated files from {self.seeds} seed files + {self.scans} scans in {self.seconds:.0f} s: "
                + ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items())))


def run(cases: int = 200, seed: int = 0, workers: int = 2, scan_every: int = 25, keep: str | None = None) -> FuzzReport:
    """Mutate ``cases`` files, run each through describe+load, and every ``scan_every`` files scan their folder."""
    rng = random.Random(seed)
    seeds = seed_files()
    blobs = {p: p.read_bytes() for p in seeds}
    t0 = time.perf_counter()
    outcomes: Counter = Counter()
    by_kind: dict[str, Counter] = {}
    failures = []
    with tempfile.TemporaryDirectory(prefix="medmm-fuzz-") as tmp:
        tasks, meta = [], []
        for k in range(cases):
            src = rng.choice(seeds)
            data, kind = mutate(blobs[src], rng)
            folder = Path(tmp) / f"batch{k // scan_every:04d}"
            folder.mkdir(exist_ok=True)
            path = folder / f"case{k:06d}.dcm"
            path.write_bytes(data)
            tasks.append(("file", str(path)))
            meta.append((src.name, kind, path))
        folders = sorted({str(p.parent) for _, _, p in meta})
        pool = Pool(workers)
        try:
            results = pool.run(tasks + [("scan", f) for f in folders])
        finally:
            pool.close()
        for (name, kind, path), (status, detail) in zip(meta + [(f, "scan", Path(f)) for f in folders], results):
            outcomes[status] += 1
            by_kind.setdefault(kind.split("+")[0], Counter())[status] += 1
            if status in ("crash", "hang", "unclear"):
                failures.append((name, kind, status, detail))
                if keep:
                    os.makedirs(keep, exist_ok=True)
                    if path.is_file():
                        (Path(keep) / f"{status}-{path.name}").write_bytes(path.read_bytes())
    return FuzzReport(cases, len(seeds), outcomes, by_kind, failures, len(folders), time.perf_counter() - t0)


def report(r: FuzzReport) -> str:
    lines = [f"## DICOM mutation fuzzer\n\n{r.line()}\n", "| mutation | ok | rejected | unclear | crash | hang |",
             "|---|---|---|---|---|---|"]
    for kind, c in sorted(r.by_kind.items()):
        lines.append(f"| {kind} | {c['ok']} | {c['rejected']} | {c['unclear']} | {c['crash']} | {c['hang']} |")
    for name, kind, status, detail in r.failures[:40]:
        lines.append(f"- {status}: {name} ({kind}): {detail}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.fuzz_dicom")
    p.add_argument("--cases", type=int, default=5000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--keep", default=None, help="folder to copy failing inputs into")
    a = p.parse_args(argv)
    r = run(a.cases, a.seed, a.workers, keep=a.keep)
    print(report(r))
    return 1 if r.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
