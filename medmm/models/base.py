"""The one interface every vision-language model backend implements.

A :class:`Request` is images plus a prompt (or chat messages); a backend answers with
:meth:`VLM.generate` (free text) and :meth:`VLM.score_options` (the log-probability of each
candidate answer, the basis of multiple-choice probing and of the SIMPLE report check).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, Sequence, Union

import numpy as np
from PIL import Image

from medmm.errors import InputError, MedmmError
from medmm.imaging.volume import Volume
from medmm.regions.box import Box as RegionBox
from medmm.regions.draw import draw
from medmm.regions.frames import Acquisition, Display, Model


class ModelError(MedmmError):
    """A model cannot be loaded or cannot answer (missing files, unsupported, server down)."""


class UnsupportedError(ModelError):
    """The backend cannot do what was asked (e.g. option scoring on a server without logprobs)."""


@dataclass(frozen=True)
class ImageView:
    """How to turn a :class:`Volume` into the 2-D image a model sees."""

    volume: Volume
    window: str = "file"
    index: int | None = None  # slice in display orientation; None = middle
    axis: str = "axial"
    mip: bool = False
    three_windows: tuple[str, str, str] | None = None

    def to_pil(self) -> Image.Image:
        from medmm.imaging.views import render, three_windows

        if self.three_windows:
            arr = three_windows(self.volume, self.three_windows, index=self.index, axis=self.axis, mip=self.mip)  # type: ignore[arg-type]
        else:
            arr = render(self.volume, window=self.window, index=self.index, axis=self.axis, mip=self.mip)  # type: ignore[arg-type]
        return Image.fromarray(arr).convert("RGB")


ImageLike = Union[Image.Image, Volume, ImageView]
# A visual-prompt box: a regions.Box, or a plain (x1, y1, x2, y2) in the pixels of the image as shown.
Box = Union[RegionBox, tuple[float, float, float, float]]


@dataclass
class Request:
    """Images and a prompt (``prompt``) or chat ``messages`` for one model call.

    ``messages`` follow the transformers chat format: ``[{"role": "system"|"user"|"assistant",
    "content": str | [{"type": "image"} | {"type": "text", "text": str}]}]``. With a plain
    ``prompt``, one user turn is built with every image first, then the text. ``boxes`` are
    visual prompts: one list of boxes per image, drawn (``box_shape``: rectangle, ellipse or arrow)
    on a copy of it with :func:`medmm.regions.draw`. A box is a :class:`medmm.regions.Box` — in the
    display frame of the image's view, in a model frame (drawn at its coordinates when the image
    has the transform's output size, else mapped back to its source), or, for a Volume/ImageView,
    in the acquisition or world frame (converted to the view; it must lie on the rendered slice) —
    or a plain ``(x1, y1, x2, y2)`` tuple in the pixels of the image as shown (x2/y2 exclusive).
    """

    images: Sequence[ImageLike] = ()
    prompt: str | None = None
    messages: list[dict[str, Any]] | None = None
    system: str | None = None
    boxes: Sequence[Sequence[Box]] | None = None
    box_shape: str = "rectangle"

    def chat(self) -> list[dict[str, Any]]:
        if self.messages is not None:
            return self.messages
        if self.prompt is None:
            raise InputError("a Request needs a prompt or chat messages")
        content: list[dict[str, Any]] = [{"type": "image"} for _ in self.images]
        content.append({"type": "text", "text": self.prompt})
        out: list[dict[str, Any]] = []
        if self.system:
            out.append({"role": "system", "content": [{"type": "text", "text": self.system}]})
        out.append({"role": "user", "content": content})
        return out

    def image_slots(self) -> int:
        n = 0
        for m in self.chat():
            content = m.get("content")
            if isinstance(content, list):
                n += sum(1 for c in content if isinstance(c, dict) and c.get("type") == "image")
        return n

    def pil_images(self) -> list[Image.Image]:
        """Images as RGB PIL images, with visual-prompt boxes drawn; checks the count."""
        slots = self.image_slots()
        if slots != len(self.images):
            raise InputError(
                f"the prompt has {slots} image placeholder(s) but {len(self.images)} image(s) were given; "
                "give one image per {'type': 'image'} entry"
            )
        out = []
        for i, img in enumerate(self.images):
            if isinstance(img, Volume):
                pil = ImageView(img).to_pil()
            elif isinstance(img, ImageView):
                pil = img.to_pil()
            elif isinstance(img, Image.Image):
                pil = img.convert("RGB")
            elif isinstance(img, np.ndarray):
                pil = Image.fromarray(img).convert("RGB")
            else:
                raise InputError(f"image {i}: expected a PIL image, a Volume or an ImageView, got {type(img).__name__}")
            if self.boxes and i < len(self.boxes) and self.boxes[i]:
                pil = draw(pil, [_box_on_image(b, img, pil.size, i) for b in self.boxes[i]], shape=self.box_shape)
            out.append(pil)
        return out


def _box_on_image(box: Box, image: ImageLike, size: tuple[int, int], i: int) -> tuple[float, float, float, float]:
    """Where a visual-prompt box lies in the pixels of image ``i`` as given to the model."""
    if not isinstance(box, RegionBox):
        x1, y1, x2, y2 = (float(v) for v in box)  # a plain tuple: pixels of the image as shown
        return x1, y1, x2, y2
    if isinstance(box.frame, Model):
        t = box.frame.transform
        if tuple(size) == tuple(t.size):
            return box.as_tuple()
        if tuple(size) == tuple(t.source_size):
            box = box.from_model()
        else:
            raise InputError(f"image {i}: a model-frame box for a {t.size[0]}x{t.size[1]} input (from "
                             f"{t.source_size[0]}x{t.source_size[1]}) cannot be drawn on a {size[0]}x{size[1]} image")
    view = image if isinstance(image, ImageView) else ImageView(image) if isinstance(image, Volume) else None
    if view is None:
        # a picture: a display box, or a 2-D acquisition box (a radiograph's stored pixels), is drawn as is
        if isinstance(box.frame, Display) or (isinstance(box.frame, Acquisition) and box.slice is None):
            return box.as_tuple()
        raise InputError(f"image {i}: a {box.frame.to_dict()['frame']}-frame box needs a Volume or ImageView "
                         "to be placed on it; convert it to the display frame first")
    if isinstance(box.frame, Display) and box.frame.axis == view.axis and box.slice is None:
        return box.as_tuple()  # a display box that does not name its slice: the slice shown
    d = box.to_display(view.volume, view.axis)
    shown = _display_slice(view)
    if not view.mip and d.slice != shown:
        raise InputError(f"image {i}: the box lies on {view.axis} slice {d.slice}, the view shows slice {shown}; "
                         f"use ImageView(..., index={d.slice}, axis={view.axis!r})")
    return d.as_tuple()


def _display_slice(view: ImageView) -> int:
    """The display slice an ImageView renders (its index, or the middle as views.plane does)."""
    from medmm.regions.geometry import Geometry

    n = Geometry.of(view.volume).view_size(view.axis)[2]
    return n // 2 if view.index is None else (view.index % n)


@dataclass(frozen=True)
class Generation:
    """One answer. ``seconds`` is the wall time of the call that produced it (for a batched
    backend, the whole batch's); ``finish_reason`` is ``stop`` or ``length`` (or the server's)."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    finish_reason: str | None = None


@dataclass(frozen=True)
class OptionScore:
    """Log-probability of one option as the assistant's answer."""

    option: str
    logprob: float  # summed over the option's tokens
    n_tokens: int

    @property
    def mean_logprob(self) -> float:
        return self.logprob / max(self.n_tokens, 1)


@dataclass(frozen=True)
class Question:
    """One question asked after a shared prompt (:meth:`VLM.score_questions`): its ``text`` is appended to
    the request's prompt (to the last user turn of chat ``messages``), then its ``options`` are scored."""

    text: str
    options: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.options or not all(isinstance(o, str) and o for o in self.options):
            raise InputError(f"question {self.text[:40]!r}: give at least one non-empty option")
        object.__setattr__(self, "options", tuple(self.options))


def with_question(request: Request, text: str) -> Request:
    """``request`` with ``text`` appended to its prompt, or to the last user turn of its chat messages."""
    from dataclasses import replace

    if request.messages is None:
        if request.prompt is None:
            raise InputError("a Request needs a prompt or chat messages")
        return replace(request, prompt=request.prompt + text)
    msgs = [dict(m) for m in request.messages]
    for m in reversed(msgs):
        if m.get("role") == "user":
            content = m.get("content")
            if isinstance(content, list):
                m["content"] = [*content, {"type": "text", "text": text}]
            else:
                m["content"] = f"{content or ''}{text}"
            return replace(request, messages=msgs)
    raise InputError("the chat messages have no user turn to ask the question in")


class VLM(abc.ABC):
    """A loaded vision-language model. Backends: ``hf``, ``tiny`` (an hf model built in memory), ``http``."""

    name: str = "vlm"

    @abc.abstractmethod
    def generate(self, requests: Sequence[Request], max_new_tokens: int = 64, temperature: float = 0.0,
                 **kwargs: Any) -> list[Generation]:
        """Answer each request with free text (greedy when ``temperature`` is 0)."""

    @abc.abstractmethod
    def score_option_details(self, requests: Sequence[Request],
                             options: Sequence[str] | Sequence[Sequence[str]]) -> list[list[OptionScore]]:
        """Per request, the log-probability details of each option."""

    def score_options(self, requests: Sequence[Request], options: Sequence[str] | Sequence[Sequence[str]],
                      reduction: str = "sum") -> list[list[float]]:
        """Per request, the summed (``reduction="sum"``) or per-token mean (``"mean"``) log-probability
        of each option as the assistant's answer. ``options`` is one list for all requests or one per request."""
        if reduction not in ("sum", "mean"):
            raise InputError("reduction must be 'sum' or 'mean'")
        details = self.score_option_details(requests, options)
        return [[s.logprob if reduction == "sum" else s.mean_logprob for s in row] for row in details]

    def score_questions(self, requests: Sequence[Request], questions: Sequence[Question]
                        ) -> list[list[list[OptionScore]]]:
        """Per request, per question, the log-probability details of each of the question's options, the
        question asked after the request's prompt (:func:`with_question`). This generic version asks each
        question as its own prompt (``score_option_details`` once per question); a backend that can share
        the prompt's encoding between the questions (``hf``: images and report encoded once, every
        question and option scored on its KV cache) overrides it with the same results."""
        qs = check_questions(questions)
        return self.score_prompt_sets([[with_question(r, q.text) for q in qs] for r in requests], [q.options for q in qs])

    def score_prompt_sets(self, prompt_sets: Sequence[Sequence[Request]], options: Sequence[Sequence[str]]
                          ) -> list[list[list[OptionScore]]]:
        """Per item, per prompt, the details of each option: ``prompt_sets[i][q]`` (prompts about the same
        images, e.g. a report's SIMPLE and COMPLEX prompts) scored with ``options[q]``. Generic: one
        ``score_option_details`` call per prompt position; ``hf`` encodes the prompts' common prefix once."""
        return score_prompt_sets_per_prompt(self, prompt_sets, options)

    @abc.abstractmethod
    def fingerprint(self) -> str:
        """A stable hash of everything that determines outputs."""


def options_per_request(requests: Sequence[Request], options: Sequence[str] | Sequence[Sequence[str]]) -> list[list[str]]:
    if not options:
        raise InputError("give at least one option")
    if all(isinstance(o, str) for o in options):
        return [list(options) for _ in requests]  # type: ignore[arg-type]
    if len(options) != len(requests):
        raise InputError(f"{len(options)} option lists for {len(requests)} requests")
    out = [list(o) for o in options]  # type: ignore[arg-type]
    if any(not o for o in out):
        raise InputError("every request needs at least one option")
    return out


def check_questions(questions: Sequence[Question]) -> list[Question]:
    qs = list(questions)
    if not qs or not all(isinstance(q, Question) for q in qs):
        raise InputError("give at least one medmm.models.Question(text, options)")
    return qs


def score_questions_per_prompt(vlm: VLM, requests: Sequence[Request], questions: Sequence[Question]
                               ) -> list[list[list[OptionScore]]]:
    """:meth:`VLM.score_questions` by one prompt per question (the reference the shared encoding must equal)."""
    qs = check_questions(questions)
    return score_prompt_sets_per_prompt(vlm, [[with_question(r, q.text) for q in qs] for r in requests],
                                        [q.options for q in qs])


def check_prompt_sets(prompt_sets: Sequence[Sequence[Request]], options: Sequence[Sequence[str]]) -> None:
    if not options or any(not o for o in options):
        raise InputError("give one non-empty option list per prompt position")
    for i, ps in enumerate(prompt_sets):
        if len(ps) != len(options):
            raise InputError(f"item {i}: {len(ps)} prompt(s) for {len(options)} option list(s)")


def score_prompt_sets_per_prompt(vlm: VLM, prompt_sets: Sequence[Sequence[Request]], options: Sequence[Sequence[str]]
                                 ) -> list[list[list[OptionScore]]]:
    """:meth:`VLM.score_prompt_sets` by one ``score_option_details`` call per prompt position."""
    check_prompt_sets(prompt_sets, options)
    out: list[list[list[OptionScore]]] = [[[] for _ in options] for _ in prompt_sets]
    for qi, opts in enumerate(options):
        details = vlm.score_option_details([ps[qi] for ps in prompt_sets], list(opts))
        for ri, row in enumerate(details):
            out[ri][qi] = row
    return out
