"""``medmm models build-tiny`` and ``medmm ask``: argparse wiring and thin handlers (the work is medmm.models)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from medmm._cli import RegistryChoices
from medmm.errors import InputError

# the families a tiny model is built for (the model family registry), read when `models build-tiny` is parsed
TINY_FAMILIES = RegistryChoices("medmm.models.tiny:FAMILIES")


def _cmd_build_tiny(args: argparse.Namespace) -> int:
    from medmm.models.tiny import build_tiny

    vlm = build_tiny(args.family, seed=args.seed)
    vlm.save(args.out)
    n = sum(p.numel() for p in vlm.model.parameters())
    print(f"wrote {args.out}: tiny {args.family} ({n:,} parameters); load it with --model hf:{args.out}", file=sys.stderr)
    return 0


def _image_for_model(path: str, window: str, index: int | None):  # noqa: ANN202 - PIL image
    from PIL import Image, UnidentifiedImageError

    from medmm.imaging.io import load_volume
    from medmm.imaging.nifti import is_nifti
    from medmm.models.base import ImageView

    if not os.path.exists(path):
        raise InputError(f"{path}: no such file or folder")
    if os.path.isfile(path) and not is_nifti(path) and path.lower().endswith((".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")):
        try:
            return Image.open(path).convert("RGB")
        except (UnidentifiedImageError, OSError) as exc:
            raise InputError(f"{path}: not a readable image ({exc})") from exc
    return ImageView(load_volume(path), window=window, index=index)


def _parse_box(text: str) -> tuple[float, float, float, float]:
    try:
        x1, y1, x2, y2 = (float(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"--box {text!r}: give x1,y1,x2,y2 in pixels of the image as shown (x2/y2 exclusive)") from None
    if x2 <= x1 or y2 <= y1:
        raise InputError(f"--box {text!r}: x2 must exceed x1 and y2 must exceed y1")
    return x1, y1, x2, y2


def _cmd_ask(args: argparse.Namespace) -> int:
    from medmm.models import Request, load

    options = {"adapter": args.adapter, "allow_pickle": args.allow_pickle or None,
               "trust_remote_code": args.trust_remote_code or None, "model": args.server_model,
               "device": args.device, "dtype": args.dtype}
    vlm = load(args.model, **options)
    images = [_image_for_model(p, args.window, args.slice) for p in args.image]
    box = _parse_box(args.box) if args.box else None
    if args.vicrop:
        return _ask_vicrop(args, vlm, images, box)
    prompt, boxes = args.prompt, None
    if box is not None:  # a visual prompt: the box drawn on the first image, referred to in the question
        from medmm.models.vicrop import visual_prompt

        prompt = visual_prompt(args.prompt, args.box_shape)
        boxes = [[box]] + [[] for _ in images[1:]]
    request = Request(images=images, prompt=prompt, boxes=boxes, box_shape=args.box_shape)
    out: dict[str, object] = {}
    gen = vlm.generate([request], max_new_tokens=args.max_new_tokens)[0]
    out["text"] = gen.text
    if box is not None:
        out["prompt"] = prompt
    if args.options:
        opts = [o for o in args.options.split("|") if o]
        scores = vlm.score_options([request], opts)[0]
        out["options"] = dict(zip(opts, scores))
    if args.json:
        print(json.dumps(out))
    else:
        print(gen.text)
        for k, v in (out.get("options") or {}).items():  # type: ignore[union-attr]
            print(f"  {k}: {v:.4f}")
    return 0


def _ask_vicrop(args: argparse.Namespace, vlm: object, images: list, box: tuple[float, ...] | None) -> int:
    from medmm.models.vicrop import vicrop

    if len(images) != 1:
        raise InputError("--vicrop works on one --image")
    res = vicrop(vlm, images[0], args.prompt, box=box, margin=args.margin, max_new_tokens=args.max_new_tokens)
    if args.json:
        print(json.dumps(res.to_dict()))
    else:
        print(res.answer)
        print(f"  (crop {res.crop} by {res.method}; full-image answer: {res.answer_full!r}; "
              f"{'changed' if res.changed else 'unchanged'})", file=sys.stderr)
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    models = sub.add_parser("models", help="model utilities").add_subparsers(dest="models_command", required=True)
    p = models.add_parser("build-tiny", help="write a tiny random model checkpoint (offline) that hf: loads")
    p.add_argument("--family", choices=TINY_FAMILIES, required=True, metavar="FAMILY",
                   help="tiny model family: %(choices)s")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=None)
    p.set_defaults(func=_cmd_build_tiny)

    p = sub.add_parser("ask", help="ask a vision-language model about images")
    p.add_argument("--model", required=True, help="hf:PATH, tiny:llava|qwen2-vl, http:URL or a YAML config")
    p.add_argument("--image", action="append", default=[], help="DICOM file/folder, NIfTI or PNG/JPEG (repeatable)")
    p.add_argument("--prompt", required=True)
    p.add_argument("--options", default=None, help='candidate answers to score, e.g. "yes|no"')
    p.add_argument("--json", action="store_true", help='print {"text": ..., "options": {...}}')
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--window", default="file", help="display window for DICOM/NIfTI images")
    p.add_argument("--slice", type=int, default=None, help="slice of a volume (default: middle)")
    p.add_argument("--adapter", default=None, help="LoRA adapter folder (hf models)")
    p.add_argument("--allow-pickle", action="store_true", help="allow .bin/.pt weights (they can run code)")
    p.add_argument("--trust-remote-code", action="store_true")
    p.add_argument("--server-model", default=None, help="model name for http servers")
    p.add_argument("--device", default=None, help="cpu, cuda or auto (hf models)")
    p.add_argument("--dtype", default=None, help="auto, float32, bfloat16, float16 (hf models)")
    p.add_argument("--box", default=None, metavar="X1,Y1,X2,Y2",
                   help="region in pixels of the (first) image as shown: drawn as a visual prompt, or cropped with --vicrop")
    p.add_argument("--box-shape", choices=("rectangle", "ellipse", "arrow"), default="rectangle",
                   help="how the visual prompt is drawn")
    p.add_argument("--vicrop", action="store_true",
                   help="ask again with [full image, crop of --box] (LLaVA-family without --box: attention crop)")
    p.add_argument("--margin", type=float, default=0.5, help="ViCrop context margin, a fraction of the box size")
    p.set_defaults(func=_cmd_ask)
