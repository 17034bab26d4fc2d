"""One task registry (medmm.tasks, layer L0): probes and region tasks declare themselves there (reader, prompt,
parser, scorer), and everything that lists or runs tasks reads it."""

from __future__ import annotations

import pytest

from medmm import tasks as registry
from medmm.errors import InputError


@pytest.fixture
def extra_task():
    """Register a task for one test and remove it afterwards (the registry is process-wide)."""
    added: list[str] = []

    def add(spec: registry.TaskSpec) -> registry.TaskSpec:
        added.append(spec.name)
        return registry.register(spec)

    yield add
    for name in added:
        registry._TASKS.pop(name, None)


def test_every_probe_and_region_task_is_declared_in_the_registry():
    import medmm.probe.tasks as probe_tasks
    import medmm.regions.tasks as region_tasks

    assert registry.names("probe") == ("negation", "confusion")
    assert registry.names("region") == ("region_to_text", "text_to_region", "grounded_report")
    for spec in registry.specs():
        assert all(callable(getattr(spec, part)) for part in ("reader", "prompt", "parser", "scorer"))
    # the packages' own lists are the registry's
    assert probe_tasks.task_names() == registry.names("probe") and list(probe_tasks.TASKS) == list(registry.names("probe"))
    assert region_tasks.TASKS == region_tasks.region_task_names() == registry.names("region")
    for name in registry.names("probe"):
        assert probe_tasks.get_task(name) is registry.get(name, "probe").details
        assert registry.get(name).prompt()  # its prompt templates (medmm/probe/prompts.yaml)
    for name in registry.names("region"):
        spec = registry.get(name, "region")
        assert spec.reader is region_tasks.read_jsonl and spec.prompt is region_tasks.conversation
    with pytest.raises(InputError, match="unknown region task 'negation'"):
        registry.get("negation", "region")


def test_a_registered_probe_reaches_the_runner_and_the_cli():
    """A probe registered before the CLI reads its choices is a --bench choice and what the runner dispatches to
    (in a fresh process: argparse's registry choices are read once per process)."""
    import subprocess
    import sys

    code = """
from medmm import cli
from medmm import tasks as registry
from medmm.probe.tasks import ProbeTask, get_task, register
neg = get_task("negation")
register(ProbeTask("negation-copy", "a copy", modes=neg.modes, parsers=neg.parsers, metrics=neg.metrics,
                   load=neg.load, score_variant=neg.score_variant, prompt_set="probmed"))
args = cli.build_parser("probe").parse_args(["probe", "run", "--bench", "negation-copy", "--data", "d",
                                             "--model", "m", "--out", "o"])
assert get_task(args.bench) is registry.get("negation-copy", "probe").details
print(args.bench, registry.names("probe"))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "negation-copy ('negation', 'confusion', 'negation-copy')"


def test_a_registered_region_task_is_accepted_and_scored_through_the_registry(extra_task):
    from medmm.finetune.grounding import score, select
    from medmm.regions import Box
    from medmm.regions.codecs import Qwen2VLCodec
    from medmm.regions.frames import InputTransform
    from medmm.regions.readers import LabeledRegion
    from medmm.regions.tasks import Sample, conversation, read_jsonl

    obj = (LabeledRegion("liver", (Box(2, 2, 10, 10, slice=0),)),)
    with pytest.raises(InputError, match="unknown region task"):
        Sample("s1", "name_the_organ", "a.png", 32, 32, obj)
    seen: list[str] = []

    def parser(text, sample, codec, transform):
        seen.append(text)
        return text

    extra_task(registry.TaskSpec("name_the_organ", "region", "say the organ's name", reader=read_jsonl,
                                 prompt=lambda s, codec, t=None, system=True: conversation(
                                     Sample(s.id, "region_to_text", s.image, s.width, s.height, s.objects), codec, t,
                                     system),
                                 parser=parser, scorer=lambda s, parsed: {"said": parsed}))
    s = Sample("s1", "name_the_organ", "a.png", 32, 32, obj)  # accepted once registered
    assert select([s], None) == [s]  # grounding evaluation selects the registry's region tasks
    score([s], {"s1": "liver"}, Qwen2VLCodec(), lambda x: InputTransform.identity(32, 32), None)
    assert seen == ["liver"]  # the answer went through the task's own parser


def test_grounding_scores_each_answer_with_its_tasks_parser_and_scorer(monkeypatch):
    from medmm.finetune.grounding import score
    from medmm.regions import Box
    from medmm.regions.codecs import Qwen2VLCodec
    from medmm.regions.frames import InputTransform
    from medmm.regions.readers import LabeledRegion
    from medmm.regions.tasks import Sample

    spec = registry.get("text_to_region", "region")
    calls: list[str] = []

    def scorer(sample, boxes):
        calls.append(sample.id)
        return spec.scorer(sample, boxes)

    monkeypatch.setitem(registry._TASKS, "text_to_region", registry.TaskSpec(
        spec.name, spec.kind, spec.title, spec.reader, spec.prompt, spec.parser, scorer))
    s = Sample("t1", "text_to_region", "a.png", 100, 100, (LabeledRegion("liver", (Box(10, 10, 50, 50, slice=0),)),))
    codec = Qwen2VLCodec()
    t = InputTransform.identity(100, 100)
    answer = codec.encode([__import__("medmm.regions.codecs", fromlist=["RefBoxes"]).RefBoxes("liver", ((10, 10, 50, 50),))],
                          t.size)
    out = score([s], {"t1": answer}, codec, lambda x: t, None)
    assert calls == ["t1"] and out["miou"] == pytest.approx(1.0, abs=0.05) and out["multi_box"]["matched"] == 1


def test_finetune_config_and_cli_take_the_registry_s_region_tasks():
    from medmm import cli
    from medmm.regions.tasks import region_task_names

    args = cli.build_parser("region-tasks").parse_args(["region-tasks", "--format", "synth", "--input", "m.jsonl",
                                                        "--out", "o.jsonl"])
    assert args.tasks is None  # None = every region task of the registry (_cmd_region_tasks)
    assert region_task_names() == registry.names("region")
