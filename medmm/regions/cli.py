"""``medmm render``: argparse wiring and a thin handler (a view of medmm.imaging, boxes drawn by medmm.regions)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from medmm.errors import InputError
from medmm.imaging.cli import loading


def _render_boxes(args: argparse.Namespace, vol: Any) -> tuple[str, int | None, list[Any]]:
    """View axis, display slice and display-frame boxes for ``--box-json`` / ``--acquired-slice``."""
    from medmm.regions import Box, Display, Geometry

    geom = Geometry.of(vol)
    if args.acquired_slice is not None:  # the plane as acquired: k in position order
        n = geom.shape[2]
        if not 0 <= args.acquired_slice < n:
            raise InputError(f"--acquired-slice {args.acquired_slice} out of range: the series has {n} slice(s)")
        d = Box(0, 0, 1, 1, slice=None if n == 1 else args.acquired_slice).to_display(geom, args.axis)
        return d.frame.axis, d.slice, []
    if not args.box_json:
        return args.axis or "axial", args.slice, []
    text = args.box_json
    if text.startswith("@"):
        with open(text[1:], encoding="utf-8") as fh:
            text = fh.read()
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"--box-json is not JSON ({exc.msg}): give a box dict such as "
                         '\'{"frame": "acquisition", "slice": 12, "x1": 30, "y1": 40, "x2": 52, "y2": 61}\'') from exc
    boxes = [Box.from_dict(b) for b in (raw if isinstance(raw, list) else [raw])]
    axis = args.axis or next((b.frame.axis for b in boxes if isinstance(b.frame, Display)), None)
    shown = [b.to_display(geom, axis) for b in boxes]
    axis, index = shown[0].frame.axis, shown[0].slice
    if args.slice is not None and args.slice != index:
        raise InputError(f"--slice {args.slice} is not the box's {axis} display slice {index}: leave --slice out")
    return axis, index, [b for b in shown if b.slice == index or args.mip]


def _cmd_render(args: argparse.Namespace) -> int:
    from medmm.imaging.io import load_volume
    from medmm.imaging.views import render, save_png, three_windows
    from medmm.regions import draw

    vol = load_volume(args.path, force=args.force, max_voxels=args.max_voxels)
    axis, index, boxes = _render_boxes(args, vol)
    if args.three_windows:
        names = tuple(w.strip() for w in args.three_windows.split(","))
        if len(names) != 3:
            raise InputError("--three-windows takes three window names, e.g. lung,mediastinum,bone")
        img = three_windows(vol, windows=names, index=index, axis=axis, mip=args.mip)  # type: ignore[arg-type]
    else:
        img = render(vol, window=args.window, index=index, axis=axis, mip=args.mip, frame=args.frame)  # type: ignore[arg-type]
    if boxes:
        import numpy as np

        img = np.asarray(draw(img, boxes, shape=args.box_shape))
        print(json.dumps([b.to_dict() for b in boxes]))  # where the boxes were drawn (display frame)
    save_png(img, args.out)
    where = "" if args.mip else f" {axis} slice {index if index is not None else 'middle'}"
    print(f"wrote {args.out} ({img.shape[1]}x{img.shape[0]}){where}", file=sys.stderr)
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("render", help="render a slice, MIP or three-window view to PNG")
    p.add_argument("path")
    p.add_argument("--out", required=True)
    p.add_argument("--window", default="file", help="lung, mediastinum, bone, brain, abdomen, file, auto or C,W")
    p.add_argument("--three-windows", default=None, metavar="W1,W2,W3",
                   help="three windows as RGB channels, e.g. lung,mediastinum,bone")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--slice", type=int, default=None, help="display slice index of --axis (default: middle)")
    group.add_argument("--mip", action="store_true", help="maximum intensity projection")
    group.add_argument("--acquired-slice", type=int, default=None, metavar="K",
                       help="the acquired slice K (position order, as manifest boxes count) in the view of the "
                            "acquired planes (coronal for a coronal series)")
    p.add_argument("--axis", choices=("axial", "coronal", "sagittal"), default=None,
                   help="view (default: axial; with --box-json or --acquired-slice, the view of the acquired planes)")
    p.add_argument("--box-json", default=None, metavar="JSON",
                   help="a box dict (or a list, or @file) in any frame, e.g. a manifest box: the slice holding it "
                        "is rendered and the box drawn; its display-frame coordinates are printed")
    p.add_argument("--box-shape", choices=("rectangle", "ellipse", "arrow"), default="rectangle")
    p.add_argument("--frame", type=int, default=0, help="time frame of a 4-D volume")
    loading(p)
    p.set_defaults(func=_cmd_render)
