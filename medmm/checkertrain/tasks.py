"""The report-checking tasks of the recipe (a task plugin, :mod:`medmm.finetune.plugins`): SIMPLE and COMPLEX samples, mixable with the region tasks.

``data.tasks`` may name ``simple`` and ``complex`` beside the region tasks; their samples come from a
``medmm checker-data`` JSONL (``data.train`` / ``data.eval`` / ``data.checker_calib``) or are generated
for the run from synthetic studies (``data.checker``, :class:`CheckerSynthSection`): training studies of
several seeds, and held-out studies of another seed split by study into a **calibration** part (the SIMPLE
threshold and the ensemble stacker are fit on it) and an **evaluation** part (``checker.json``).

Encoding (:func:`encode_checker_example`): the views of :mod:`medmm.reports.checker_views` (the same ones the
checker sees at inference), the prompt and message layout of :mod:`medmm.reports.vlm_checker` (report and
image order from the checker config), the answer (``yes``/``no``, or the COMPLEX type, quoted sentence and
region box in the family's codec, in model-input pixels), loss on the answer tokens only.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from typing import Any, Sequence

from medmm.errors import InputError
from medmm.finetune.checker_tasks import CheckerSynthSection
from medmm.checkertrain.warmup import one_sided_findings
from medmm.finetune.inputs import Example, input_transform, prepare_image, supervised_example
from medmm.reports.checker_data import CHECKER_TASKS, CheckerSample
from medmm.reports.vlm_checker import VLMCheckerConfig

__all__ = ["CHECKER_TASKS", "CheckerSynthSection", "encode_checker_example", "excerpt_samples", "is_checker",
           "prepare_checker_data", "SideQuestion", "side_questions", "read_side_questions"]


_SIDE_WORD = re.compile(r"\b(left|right)\b", re.I)


def is_checker(sample: Any) -> bool:
    return isinstance(sample, CheckerSample)


def _data_config(s: CheckerSynthSection, seed: int) -> Any:
    from medmm.reports.checker_data import CheckerDataConfig

    kw: dict[str, Any] = {"clean_per_error": s.clean_per_error, "complex": s.complex, "seed": seed}
    if s.error_models:
        kw["error_models"] = dict(s.error_models)
    return CheckerDataConfig(**kw)


def _studies(folder: str, n: int, seed: int, s: CheckerSynthSection) -> list[dict[str, Any]]:
    from medmm.reports.checker_data import studies_from_synth_manifest
    from medmm.synth import SMALL, SynthConfig, synthesize

    manifest = os.path.join(folder, "manifest.jsonl")
    if not os.path.isfile(manifest):
        synthesize(folder, n, seed=seed, kinds=tuple(s.kinds), workers=1, config=SMALL if s.small else SynthConfig())
    return studies_from_synth_manifest(manifest)


def _relative(studies: list[dict[str, Any]], folder: str, root: str) -> list[dict[str, Any]]:
    rel = os.path.relpath(folder, root)  # study ids of different seeds repeat (S0001...): the seed folder prefixes them
    return [{**st, "study_id": f"{os.path.basename(folder)}/{st['study_id']}",
             "images": [os.path.join(rel, p) for p in st["images"]]} for st in studies]


def _keep(samples: list[CheckerSample], s: CheckerSynthSection) -> list[CheckerSample]:
    if not s.only_with_error:
        return samples
    with_error = {x.study_id for x in samples if x.has_error}
    return [x for x in samples if x.study_id in with_error]


def excerpt_samples(study: dict[str, Any], n: int, seed: int, source: str = "") -> list[CheckerSample]:
    """SIMPLE samples on a study's sided sentences alone (the curriculum of ``data.checker.excerpts``).

    The full reports of the synthetic recipe are ~100 tokens around one or two side words, and a tiny
    random-init model does not find, within a CPU budget, the side words to compare with the image. Up to
    ``n`` excerpts per study — first all its sentences naming a side, then single sided sentences — each as a
    clean sample and as one with every left/right swapped (``side swap (every mention)``), ask the same SIMPLE
    question on a few tokens: the comparison of a side word with the image is learnt there and carries over to
    the whole report (the model is evaluated on whole reports only)."""
    from medmm.reports.checker_data import err_side_all
    from medmm.reports.sections import split_sentences

    if n < 1:
        return []
    import numpy as np

    sided = [x.text.strip() for x in split_sentences(str(study["report"]))
             if _SIDE_WORD.search(x.text) and len(x.text.strip()) > 3]
    if not sided:
        return []
    rng = np.random.default_rng([seed, len(sided), sum(map(ord, str(study["study_id"])))])
    texts = [" ".join(sided)] if len(sided) > 1 else []
    texts += [sided[int(i)] for i in rng.permutation(len(sided))]
    base: dict[str, Any] = dict(study_id=str(study["study_id"]), images=tuple(study.get("images") or ()),
                patient_id=study.get("patient_id"), modality=study.get("modality"), split="train",
                source=f"{source} (sided excerpt)", focus_slices=tuple(study.get("focus_slices") or ()))
    out: list[CheckerSample] = []
    for k, text in enumerate(texts[:n]):
        made = err_side_all(study, text, rng)
        if made is None:
            continue
        out.append(CheckerSample(id=f"{study['study_id']}#x{k}clean", task="simple", report=text, has_error=False,
                                 **base))
        out.append(CheckerSample(id=f"{study['study_id']}#x{k}side", task="simple", report=made[0], has_error=True,
                                 error=made[1], **base))
    return out


@dataclass(frozen=True)
class SideQuestion:
    """An auxiliary question of the checker's curriculum (``data.checker.side_questions``): which side.

    SIMPLE on a side swap is an exclusive-or of two facts — the side the report names and the side the image
    shows — and neither fact alone says anything about the answer, so a model trained from random weights gets
    no first-order gradient towards either and stays at chance (measured: 800 steps, J ~ 0). Asking each fact
    on its own gives it one: ``image`` questions ("Which side is the effusion?", the truth's side) teach the
    vision tower and the LM to carry the finding's side to the answer; ``text`` questions ("Which side does the
    report name?" on a sided sentence, as written or side-swapped) teach it to carry the report's side. With
    both in the residual stream, the comparison is learnt."""

    id: str
    kind: str  # image | text
    question: str  # the whole user prompt (the report's excerpt included for ``text``)
    answer: str  # left | right
    images: tuple[str, ...]
    study_id: str

    @property
    def task(self) -> str:
        return "side"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "images": list(self.images), "task": "side"}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SideQuestion":
        return cls(str(d["id"]), str(d["kind"]), str(d["question"]), str(d["answer"]), tuple(d["images"]),
                   str(d["study_id"]))


# the question the checker asks at inference when it verifies a report's sided claims (VLMCheckerConfig.side_prompt):
# training and inference ask the same words
IMAGE_QUESTION = VLMCheckerConfig.side_prompt
TEXT_QUESTION = ("Here is a radiology report for the image.\n\n{report}\n\n"
                 "Which side does the report name? Answer left or right.")
# findings whose side the image shows at the tiny model's 64 px: a nodule of a few mm is a pixel or two, and
# the devices' sides are fixed by the generator (a question about them would teach a text prior, not the image)
VISIBLE = ("effusion", "mass", "consolidation", "pneumothorax")


def side_questions(study: dict[str, Any], n: int, seed: int) -> list[SideQuestion]:
    """``n`` copies of an image question per visible finding type on one side only, and one text question (a
    sided sentence naming one side, as written or with left/right swapped: the report's side, not the image's)."""
    from medmm.reports.checker_data import err_side_all
    from medmm.reports.sections import split_sentences

    if n < 1:
        return []
    import numpy as np

    sid = str(study["study_id"])
    rng = np.random.default_rng([seed, 7, sum(map(ord, sid))])
    images = tuple(study.get("images") or ())
    out: list[SideQuestion] = []
    one_sided = sorted(one_sided_findings(study, VISIBLE).items())
    for k, (t, side) in enumerate(one_sided):
        out += [SideQuestion(f"{sid}#si{k}.{r}", "image", IMAGE_QUESTION.format(finding=t), side, images, sid)
                for r in range(n)]  # repeated: the image's side is the slow part to learn
    sents = [x.text.strip() for x in split_sentences(str(study["report"]))
             if len({w.lower() for w in _SIDE_WORD.findall(x.text)}) == 1]
    for k in rng.permutation(len(sents))[:1]:  # one: the report's side is learnt at once (measured: 1.00)
        text = sents[int(k)]
        if rng.random() < 0.5:
            made = err_side_all(study, text, rng)
            text = made[0] if made else text
        side = _SIDE_WORD.search(text).group(1).lower()  # type: ignore[union-attr]
        out.append(SideQuestion(f"{sid}#st{k}", "text", TEXT_QUESTION.format(report=text), side, images, sid))
    return out


def write_side_questions(questions: Sequence[SideQuestion], path: str) -> str:
    import json

    with open(path, "w", encoding="utf-8") as fh:
        for q in questions:
            fh.write(json.dumps(q.to_dict()) + "\n")
    return path


def read_side_questions(path: str) -> list[SideQuestion]:
    """The side questions of a JSONL written by :func:`prepare_checker_data`, image paths made absolute."""
    import json

    root = os.path.dirname(os.path.abspath(path))
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                q = SideQuestion.from_dict(json.loads(line))
                out.append(SideQuestion(q.id, q.kind, q.question, q.answer,
                                        tuple(p if os.path.isabs(p) else os.path.normpath(os.path.join(root, p))
                                              for p in q.images), q.study_id))
    return out


def encode_side_question(vlm: Any, q: SideQuestion, checker_config: Any) -> Example:
    """A side question as a training example: the checker's views and message layout, loss on the answer."""
    from medmm.reports.checker_views import checker_images
    from medmm.reports.vlm_checker import messages

    images = checker_images(list(q.images), None, max_views=checker_config.max_views)
    msgs = messages(q.question, len(images), checker_config.image_after_text)
    return supervised_example(vlm, msgs, [prepare_image(vlm, im) for im in images], q.answer, q.id)


def side_path(data_dir: str) -> str:
    """Where :func:`prepare_checker_data` writes the side questions (``data_dir/checker/side.jsonl``)."""
    return os.path.join(data_dir, "checker", "side.jsonl")


def vision_path(data_dir: str) -> str:
    """Where :func:`prepare_checker_data` writes the vision warm-up's labels (``data_dir/checker/vision.jsonl``)."""
    return os.path.join(data_dir, "checker", "vision.jsonl")


def prepare_checker_data(s: CheckerSynthSection, data_dir: str) -> tuple[str, str, str]:
    """Paths of the train, calibration and evaluation checker samples (generated once, deterministic)."""
    from medmm.reports.checker_data import build_samples, split_for, write_jsonl

    import json
    from dataclasses import asdict

    root = os.path.join(data_dir, "checker")
    paths = tuple(os.path.join(root, f"{name}.jsonl") for name in ("train", "calib", "eval"))
    ident_path = os.path.join(root, "section.json")  # the settings the sample files were made with
    ident = json.dumps(asdict(s), sort_keys=True, default=list)
    made_with = open(ident_path, encoding="utf-8").read() if os.path.isfile(ident_path) else None
    if all(os.path.isfile(p) for p in paths) and made_with in (None, ident):
        return paths  # type: ignore[return-value]
    os.makedirs(root, exist_ok=True)
    train: list[CheckerSample] = []
    side: list[SideQuestion] = []
    train_studies: list[dict[str, Any]] = []
    for seed in s.seeds:
        folder = os.path.join(root, "studies", f"seed{seed}")
        st = _relative(_studies(folder, s.n_per_seed, seed, s), folder, root)
        train += _keep(build_samples(st, _data_config(s, seed), source=f"synth seed {seed}", split="train"), s)
        train += [x for study in st for x in excerpt_samples(study, s.excerpts, seed, f"synth seed {seed}")]
        side += [q for study in st for q in side_questions(study, s.side_questions, seed)]
        train_studies += st
    folder = os.path.join(root, "studies", f"seed{s.eval_seed}")
    held = _relative(_studies(folder, s.n_eval, s.eval_seed, s), folder, root)
    shares = (0.0, s.calib_share, 1.0 - s.calib_share)
    calib = [x for x in held if split_for(x["study_id"], shares) == "calib"]
    ev = [x for x in held if split_for(x["study_id"], shares) != "calib"]
    cfg = _data_config(s, s.eval_seed)
    for path, samples in ((paths[0], train),
                          (paths[1], _keep(build_samples(calib, cfg, f"synth seed {s.eval_seed}", "calib"), s)),
                          (paths[2], _keep(build_samples(ev, cfg, f"synth seed {s.eval_seed}", "eval"), s))):
        write_jsonl(samples, path)
    write_side_questions(side, side_path(data_dir))
    from medmm.checkertrain.warmup import write_vision_labels

    write_vision_labels(train_studies, VISIBLE, vision_path(data_dir))  # training seeds only
    with open(ident_path, "w", encoding="utf-8") as fh:
        fh.write(ident)
    return paths  # type: ignore[return-value]


def read_checker_samples(path: str, tasks: Sequence[str] | None = None, with_lines: bool = False) -> Any:
    """The checker samples of a JSONL (of ``tasks``), image paths made absolute against the file's folder;
    with ``with_lines`` also the numbers of every checker line (other readers skip them)."""
    import json
    from dataclasses import replace

    from medmm.reports.checker_data import read_jsonl

    samples, _ = read_jsonl(path)
    root = os.path.dirname(os.path.abspath(path))
    out = [replace(s, images=tuple(p if os.path.isabs(p) else os.path.normpath(os.path.join(root, p)) for p in s.images))
           for s in samples if tasks is None or s.task in tasks]
    if not with_lines:
        return out
    lines = set()
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if '"task"' in line:
                try:
                    if json.loads(line).get("task") in CHECKER_TASKS:
                        lines.add(n)
                except ValueError:
                    pass
    return out, lines


def _region_text(vlm: Any, sample: CheckerSample, codec: Any, size: tuple[int, int], n_images: int) -> str | None:
    e = sample.error
    if sample.task != "complex" or e is None or not e.region or n_images != 1 or len(sample.images) < 1:
        return None
    from medmm.regions.box import Box
    from medmm.regions.codecs import RefBoxes

    box = Box.from_dict(e.region)
    if int(e.region.get("image", 0) or 0) != 0 or box.slice is not None:
        return None  # the region lies on another image or slice than the view shown
    t = input_transform(vlm, *size)
    b = box.to_model(t).as_tuple()
    return codec.encode([RefBoxes("region", (b,))], t.size)


def encode_checker_example(vlm: Any, sample: CheckerSample, codec: Any, root: str | None, checker_config: Any,
                           blind: bool = False) -> Example:
    """One SIMPLE / COMPLEX training example (prompt with the checker's views, answer tokens, labels)."""
    from medmm.reports.checker_data import answer_text
    from medmm.reports.checker_views import checker_images
    from medmm.reports.vlm_checker import complex_prompt, messages, simple_prompt

    if not sample.images:
        raise InputError(f"sample {sample.id}: no images (the checker reads the image)")
    images = checker_images(list(sample.images), root, max_views=checker_config.max_views, blind=blind,
                            focus_slices=list(sample.focus_slices) or None)
    prompt = (simple_prompt if sample.task == "simple" else complex_prompt)(sample.report, checker_config)
    msgs = messages(prompt, len(images), checker_config.image_after_text)
    region = _region_text(vlm, sample, codec, images[0].size, len(images)) if codec is not None else None
    return supervised_example(vlm, msgs, [prepare_image(vlm, im) for im in images], answer_text(sample, region),
                              sample.id)


def checker_config(cfg: Any) -> Any:
    """The VLM checker config a run trains with (the packaged prompts, ``data.checker_prompt`` on top);
    written next to the model at the end with its calibrated threshold."""
    from dataclasses import replace

    from medmm.reports.vlm_checker import VLMCheckerConfig

    base = VLMCheckerConfig.load()
    extra = dict(cfg.data.checker_prompt or {})
    if "options" in extra:
        extra["options"] = tuple(extra["options"])
    return replace(base, **extra)
