"""Run identity (RunConfig) and the crash-safe result cache."""

import os
import signal
import stat
import subprocess
import sys
import textwrap
from dataclasses import dataclass

import pytest

from medmm.errors import InputError
from medmm.runs import ResultCache, RunConfig, canonical, file_fingerprint, item_key, stable_hash


@dataclass(frozen=True)
class _Thresholds:
    flag: float
    ensemble_weight: float


def test_run_key_changes_with_every_part_and_not_with_order(tmp_path):
    base = RunConfig.build("report-check", checker="rules", rules_version="2", model=None,
                           thresholds=_Thresholds(0.5, 0.3), config={"a": 1, "b": [1, 2]})
    same = RunConfig.build("report-check", config={"b": [1, 2], "a": 1}, thresholds=_Thresholds(0.5, 0.3),
                           model=None, rules_version="2", checker="rules")
    assert base.key == same.key and hash(base) == hash(same)
    variants = [
        base.replace(checker="ensemble"), base.replace(rules_version="3"), base.replace(model="abc"),
        base.replace(thresholds=_Thresholds(0.6, 0.3)), base.replace(thresholds=_Thresholds(0.5, 0.4)),
        base.replace(config={"a": 1, "b": [2, 1]}), RunConfig.build("probe", **{k: v for k, v in base.to_dict().items() if k != "kind"}),
    ]
    keys = {v.key for v in variants}
    assert base.key not in keys and len(keys) == len(variants)
    assert base["thresholds"] == {"flag": 0.5, "ensemble_weight": 0.3}
    assert base.get("missing", 7) == 7


def test_file_fingerprint_follows_content(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("threshold: 0.5\n")
    a = file_fingerprint(f)
    f.write_text("threshold: 0.6\n")
    assert file_fingerprint(f) != a
    d = tmp_path / "dir"
    d.mkdir()
    (d / "x").write_text("1")
    b = file_fingerprint(d)
    (d / "x").write_text("2")
    assert file_fingerprint(d) != b
    with pytest.raises(InputError, match="no such file"):
        file_fingerprint(tmp_path / "missing")


def test_canonical_refuses_objects_without_a_stable_form():
    with pytest.raises(TypeError, match="fingerprint"):
        canonical(object())
    assert stable_hash({"a": 1.0, "b": {2, 1}}) == stable_hash({"b": {1, 2}, "a": 1.0})


def test_cache_ok_results_are_final_failed_and_empty_are_retried(tmp_path):
    path = tmp_path / "cache.sqlite"
    cfg = RunConfig.build("probe", model="m1", prompt="p")
    with ResultCache(path) as cache:
        key = cache.register(cfg)
        assert cache.config(key)["model"] == "m1"
        assert cache.put("a", key, {"answer": "yes"})
        assert not cache.put("a", key, {"answer": "no"})        # ok is final
        assert cache.get("a", key) == {"answer": "yes"}
        assert not cache.put("b", key, error="timeout")
        assert not cache.put("c", key, "")                      # empty answer: stored as failed
        assert cache.get("b", key) is None and cache.get("c", key) is None
        assert cache.status("c", key)["error"] == "empty result"
        assert cache.done_keys(key) == {"a"} and cache.failed_keys(key) == {"b", "c"}
        assert cache.put("b", key, {"answer": "no"})            # a retry replaces the failure
        assert cache.status("b", key)["attempts"] == 2
        assert cache.get("a", "other-config") is None
        assert cache.put_many([("d", 1, None), ("e", None, "boom")], key) == 1
        assert cache.counts(key) == {"ok": 3, "failed": 2}
        assert [k for k, _ in cache.iter_results(key)] == ["a", "b", "d"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_cache_refuses_a_file_that_is_not_a_cache(tmp_path):
    bad = tmp_path / "x.sqlite"
    bad.write_bytes(b"not a database at all" * 100)
    with pytest.raises(InputError, match="not a medmm result cache"):
        ResultCache(bad)


def test_item_key_is_stable_and_distinguishes_parts():
    assert item_key("10001", 1, "prompt") == item_key("10001", 1, "prompt")
    assert item_key("10001", 1, "prompt") != item_key("10001", 2, "prompt")


def test_killed_writer_loses_nothing_it_committed_and_resume_skips_it(tmp_path):
    path = tmp_path / "cache.sqlite"
    script = textwrap.dedent(f"""
        import sys, time
        from medmm.runs import ResultCache, RunConfig
        cache = ResultCache({str(path)!r})
        key = cache.register(RunConfig.build("probe", model="m"))
        for i in range(100000):
            if cache.get(str(i), key) is not None:
                continue
            cache.put(str(i), key, {{"i": i}})
            print(i, flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stdout:
        seen.append(int(line))
        if len(seen) >= 50:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    cache = ResultCache(path)
    key = RunConfig.build("probe", model="m").key
    done = cache.done_keys(key)
    # every result the writer reported as written is there, intact
    assert {str(i) for i in seen} <= done
    assert all(cache.get(k, key) == {"i": int(k)} for k in done)
    n_before = len(done)
    # a resumed writer computes only what is missing
    computed = [i for i in range(n_before + 5) if cache.get(str(i), key) is None]
    assert computed == list(range(n_before, n_before + 5))


def test_a_nested_run_config_hashes_as_its_plain_form():
    inner = RunConfig.build("probe", model="m", prompt={"a": 1})
    assert canonical({"run": inner}) == {"run": {"kind": "probe", "model": "m", "prompt": {"a": 1}}}


# --- the run core's small tools: one atomic writer, one progress helper, one KEY=VALUE reader ---------------------


def test_write_atomic_all_or_nothing(tmp_path, monkeypatch):
    import json
    import math

    from medmm.runs import write_atomic, write_json, write_jsonl

    p = tmp_path / "sub" / "m.json"
    write_json(p, {"a": math.nan, "b": [1.5, math.inf], "c": "é"})
    assert json.loads(p.read_text(encoding="utf-8")) == {"a": None, "b": [1.5, None], "c": "é"}
    write_jsonl(tmp_path / "r.jsonl", [{"x": 1}, {"x": math.nan}])
    assert (tmp_path / "r.jsonl").read_text().splitlines() == ['{"x": 1}', '{"x": null}']
    # a failure while writing leaves the old file whole and no temporary file behind
    import os as _os

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(_os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(p, "half")
    monkeypatch.undo()
    assert json.loads(p.read_text(encoding="utf-8"))["c"] == "é"
    assert [f.name for f in (tmp_path / "sub").iterdir()] == ["m.json"]
    write_atomic(tmp_path / "secret.txt", b"x", mode=0o600)
    assert (tmp_path / "secret.txt").stat().st_mode & 0o777 == 0o600


def test_write_atomic_never_follows_a_planted_link_and_keeps_the_umask(tmp_path):
    """The temporary file is created exclusively (mkstemp, 0600): a symlink planted at the old predictable
    temporary name or at the target is never written through; without ``mode`` the file gets 0o666 less the umask."""
    import os as _os

    from medmm.runs import write_atomic, write_json

    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    target = tmp_path / "out.json"
    for name in (f"out.json.{_os.getpid()}.tmp", "out.json.tmp", ".out.json.tmp"):
        (tmp_path / name).symlink_to(victim)
    target.symlink_to(victim)
    write_json(target, {"a": 1}, mode=0o600)
    assert victim.read_text() == "keep" and not target.is_symlink() and target.stat().st_mode & 0o777 == 0o600
    old = _os.umask(0o027)
    try:
        write_atomic(tmp_path / "plain.txt", "x")
    finally:
        _os.umask(old)
    assert (tmp_path / "plain.txt").stat().st_mode & 0o777 == 0o640


def test_parse_key_values_is_the_one_reader():
    from medmm.runs import parse_key_values

    got = parse_key_values(["concurrency=16", "lr=1e-3", "modules=[a, b]", "name=Qwen/Qwen2.5-VL", "flag=true",
                            "empty="])
    assert got == {"concurrency": 16, "lr": 1e-3, "modules": ["a", "b"], "name": "Qwen/Qwen2.5-VL", "flag": True,
                   "empty": None}
    with pytest.raises(InputError, match="--model-option 'nope': use KEY=VALUE, e.g. concurrency=16"):
        parse_key_values(["nope"], "--model-option", "concurrency=16")
    with pytest.raises(InputError, match="use KEY=VALUE"):
        parse_key_values(["=3"])


def test_progress_helper_is_silent_when_disabled(capsys):
    from medmm.runs import progress

    with progress(3, "x", "item", enabled=False) as bar:
        bar.update(3)
    assert capsys.readouterr().err == ""



def _open_cache(args: tuple[str, float]) -> str:
    import time

    from medmm.runs import ResultCache

    path, start = args
    while time.time() < start:  # every process opens at the same instant
        pass
    try:
        ResultCache(path).conn.close()
    except Exception as exc:  # noqa: BLE001 - the test counts what each process met
        return str(exc)
    return "ok"


def test_many_processes_open_one_new_cache_at_once(tmp_path):
    # audit workers open the same fresh cache file together; switching it to WAL must not fail any of them
    # (before the retry, about 1 open in 80 met "database is locked" here)
    import multiprocessing
    import time

    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(8) as pool:
        pool.map(_open_cache, [(str(tmp_path / "warm.sqlite"), 0.0)] * 8)
        outcomes = []
        for round_ in range(25):
            start = time.time() + 0.2
            outcomes += pool.map(_open_cache, [(str(tmp_path / f"c{round_}.sqlite"), start)] * 8)
    assert outcomes == ["ok"] * len(outcomes)
