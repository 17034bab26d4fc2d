"""``medmm probe leaderboard RUN_DIR...``: models x categories over many runs, with intervals and paired differences.

Every run must be of the same benchmark kind. The table is computed on the images (negation) or
pairs (confusion) that *every* run answered, so the rows are comparable; each run's own count is
listed too. Per cell: the score with a 95 % percentile bootstrap interval over those units.
Paired differences: each run minus the leader (the best headline score: ``overall`` for negation
pairs, ``set_accuracy`` for confusion pairs), one paired bootstrap per run (each resample takes
the same units for both), so an interval that excludes 0 is a difference the data support.

Writes ``leaderboard.md``, ``leaderboard.html``, ``leaderboard.csv``, ``leaderboard.json`` and
``plots/leaderboard.png`` (the headline metric per run with its interval).
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np

from medmm.errors import InputError
from medmm.metrics import Interval
from medmm.probe.report import RunView, _ci, _html, _plt, _signed, intervals, open_run
from medmm.probe.scoring import higher_is_better

HEADLINE = {"negation": "overall", "confusion": "set_accuracy"}


@dataclass
class Leaderboard:
    bench: str
    labels: list[str]
    metrics: tuple[str, ...]
    scores: list[dict[str, Interval]]  # per run, in ranked order
    differences: list[dict[str, Interval]]  # per run: run - leader (empty for the leader)
    n_shared: int
    n_units: list[int]
    markdown: str
    files: list[str]


def _label(view: RunView) -> str:
    run = view.run
    name = os.path.basename(os.path.normpath(view.path))
    return f"{run['model']} ({run['mode']}, {run['parser']}; {name})"


def leaderboard(paths: Sequence[str], out: str, n_boot: int = 1000, seed: int = 0) -> Leaderboard:
    """Build the leaderboard of the runs in ``paths`` into the folder ``out``."""
    if len(paths) < 1:
        raise InputError("give at least one run folder (written by medmm probe run)")
    views = [open_run(p) for p in paths]
    benches = {v.bench for v in views}
    if len(benches) != 1:
        raise InputError(f"the runs mix benchmarks ({', '.join(sorted(benches))}): a leaderboard compares runs of one")
    bench = views[0].bench
    shared = set.intersection(*(set(v.scores["image"].units) for v in views))
    if not shared:
        raise InputError("the runs share no images/pairs: run the models on the same data")
    metrics = views[0].metric_names
    restricted = [replace(v.scores["image"], units={g: u for g, u in v.scores["image"].units.items() if g in shared})
                  for v in views]
    cis = [intervals(s, metrics, n_boot, seed) for s in restricted]
    head = HEADLINE[bench]
    sign = 1 if higher_is_better(bench, head) else -1
    order = sorted(range(len(views)), key=lambda i: -sign * _value(cis[i][head]))
    leader = order[0]
    diffs = [intervals(restricted[i], metrics, n_boot, seed, baseline=restricted[leader]) if i != leader else {}
             for i in range(len(views))]
    labels = [_label(views[i]) for i in order]
    ranked_cis = [cis[i] for i in order]
    ranked_diffs = [diffs[i] for i in order]
    n_units = [len(views[i].scores["image"].units) for i in order]
    os.makedirs(os.path.join(out, "plots"), exist_ok=True)
    unit = "images" if bench == "negation" else "pairs"
    rows = ["| rank | model (mode, parser; run) | " + " | ".join(_name(bench, m) for m in metrics) + " |",
            "|---|---|" + "---|" * len(metrics)]
    for k, (label, ci) in enumerate(zip(labels, ranked_cis), 1):
        rows.append(f"| {k} | `{label}` | " + " | ".join(_ci(ci.get(m)) for m in metrics) + " |")
    drows = ["| model | " + " | ".join(_name(bench, m) for m in metrics) + " |", "|---|" + "---|" * len(metrics)]
    for label, d in zip(labels[1:], ranked_diffs[1:]):
        drows.append(f"| `{label}` | " + " | ".join(_signed(d.get(m)) for m in metrics) + " |")
    md = "\n".join([f"# Probe leaderboard: {bench} pairs", "",
                    f"- {len(views)} run(s) on {len(shared)} shared {unit} (each run's own: "
                    + ", ".join(str(n) for n in n_units) + ")",
                    f"- cells: % with a 95% percentile bootstrap interval over {unit} ({n_boot} resamples, seed {seed})",
                    f"- ranked by {head.replace('_', ' ')}", "", "## Scores", "", *rows, "",
                    f"## Paired differences to the leader (`{labels[0]}`), percentage points", "",
                    *(drows if len(labels) > 1 else ["(one run: nothing to compare)"]), "",
                    "Each resample takes the same units for both runs (paired bootstrap); an interval that excludes 0 "
                    "is a difference the data support.", "", "![leaderboard.png](plots/leaderboard.png)", ""])
    files = [os.path.join(out, n) for n in ("leaderboard.md", "leaderboard.html", "leaderboard.csv",
                                             "leaderboard.json")]
    with open(files[0], "w", encoding="utf-8") as fh:
        fh.write(md)
    with open(files[1], "w", encoding="utf-8") as fh:
        fh.write(_html(md, views[0]).replace("probe report:", "probe leaderboard:", 1))
    with open(files[2], "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["rank", "run", "model", "mode", "parser", "metric", "value", "lo", "hi", "diff_to_leader",
                    "diff_lo", "diff_hi", "n_shared"])
        for k, i in enumerate(order, 1):
            run = views[i].run
            for m in metrics:
                cell, dcell = cis[i].get(m), diffs[i].get(m)
                w.writerow([k, views[i].path, run["model"], run["mode"], run["parser"], m, *_triple(cell), *_triple(dcell),
                            len(shared)])
    data = {"bench": bench, "n_shared": len(shared), "n_boot": n_boot, "seed": seed, "ranked_by": head,
            "runs": [{"label": label, "path": views[i].path, "n_units": len(views[i].scores["image"].units),
                      "scores": {m: iv.to_dict() for m, iv in cis[i].items()},
                      "difference_to_leader": {m: iv.to_dict() for m, iv in diffs[i].items()}}
                     for label, i in zip(labels, order)]}
    with open(files[3], "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1)
    files.append(_plot(labels, ranked_cis, metrics, bench, os.path.join(out, "plots", "leaderboard.png")))
    return Leaderboard(bench, labels, metrics, ranked_cis, ranked_diffs, len(shared), n_units, md, files)


def _value(iv: Interval | None) -> float:
    return -math.inf if iv is None or math.isnan(iv.value) else iv.value


def _triple(iv: Interval | None) -> list[Any]:
    if iv is None:
        return ["", "", ""]
    return [None if math.isnan(v) else round(v, 6) for v in (iv.value, iv.lo, iv.hi)]


def _name(bench: str, metric: str) -> str:
    return metric.replace("_", " ") + ("" if higher_is_better(bench, metric) else " (lower is better)")


def _plot(labels: list[str], cis: list[dict[str, Interval]], metrics: Sequence[str], bench: str, path: str) -> str:
    """Grouped bars: every metric (x) per run (colour), with interval whiskers."""
    plt = _plt()
    shown = [m for m in metrics if m != "invalid_rate"]
    fig, ax = plt.subplots(figsize=(1.4 + 1.2 * len(shown), 3.8), dpi=110)
    width = 0.8 / max(1, len(labels))
    x = np.arange(len(shown))
    for k, (label, ci) in enumerate(zip(labels, cis)):
        vals = [100 * _nz(ci[m].value) for m in shown]
        lo = [max(0.0, v - 100 * _nz(ci[m].lo)) for v, m in zip(vals, shown)]
        hi = [max(0.0, 100 * _nz(ci[m].hi) - v) for v, m in zip(vals, shown)]
        ax.bar(x + k * width, vals, width, yerr=[lo, hi], capsize=2, label=label[:60])
    ax.set_xticks(x + width * (len(labels) - 1) / 2, [m.replace("_", " ") for m in shown], rotation=20, ha="right")
    ax.set_ylabel("%")
    ax.set_ylim(0, 100)
    ax.set_title(f"{bench} pairs: 95% CI over shared units")
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _nz(v: float) -> float:
    return 0.0 if math.isnan(v) else v
