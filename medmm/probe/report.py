"""Reports of probe runs (Markdown + HTML + PNG plots) and paired comparisons of two runs.

Intervals are percentile bootstraps over *images* (negation: ProbMed's unit; confusion: the
pair, whose two images are not independent), computed with :func:`medmm.metrics.bootstrap_ci`.
Every difference is paired: the same resampled images on both sides (the image run against its
blind control, or run B against run A on the images both ran), so image-to-image variation
cancels out of the interval.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from medmm.errors import InputError
from medmm.metrics import Interval, bootstrap_ci
from medmm.probe.runner import read_run
from medmm.probe.samples import BLIND
from medmm.probe.scoring import (CONFUSION_METRICS, NEGATION_METRICS, VariantScore, higher_is_better,
                                 region_variant_scores, summary, text_preference, variant_scores)

LEVEL = 0.95


class _Memo:
    """Metric dicts of a resample, computed once for all metrics (bootstrap_ci asks per metric)."""

    def __init__(self, fn: Callable[[np.ndarray], dict[str, float]]) -> None:
        self.fn = fn
        self.cache: dict[bytes, dict[str, float]] = {}

    def __call__(self, idx: np.ndarray) -> dict[str, float]:
        k = np.asarray(idx, dtype=np.int64).tobytes()
        if k not in self.cache:
            self.cache[k] = self.fn(idx)
        return self.cache[k]


def intervals(score: VariantScore, metrics: Sequence[str], n_boot: int, seed: int = 0,
              baseline: VariantScore | None = None) -> dict[str, Interval]:
    """Bootstrap intervals over groups of ``score`` (minus ``baseline`` on the same groups, paired)."""
    groups = np.array(sorted(set(score.units) & (set(baseline.units) if baseline else set(score.units))), dtype=object)
    if not len(groups):
        return {}

    def stat(idx: np.ndarray) -> dict[str, float]:
        chosen = list(groups[idx])
        a = score.metric(chosen)
        if baseline is None:
            return a
        b = baseline.metric(chosen)
        return {m: a[m] - b[m] for m in metrics}

    memo = _Memo(stat)
    def one(m: str) -> Callable[[np.ndarray], float]:
        return lambda idx: memo(idx)[m]

    return {m: bootstrap_ci(one(m), len(groups), n_boot=n_boot, level=LEVEL, seed=seed) for m in metrics}


@dataclass
class RunView:
    path: str
    run: dict[str, Any]
    records: list[dict[str, Any]]
    scores: dict[str, VariantScore]

    @property
    def bench(self) -> str:
        return self.run["bench"]

    @property
    def metric_names(self) -> tuple[str, ...]:
        return NEGATION_METRICS if self.bench == "negation" else CONFUSION_METRICS

    def kw(self) -> dict[str, Any]:
        return _kw(self.run)


def open_run(path: str) -> RunView:
    run, records = read_run(path)
    scores = variant_scores(records, run["bench"], run["mode"], run["parser"], **_kw(run))
    if "image" not in scores:
        raise InputError(f"{path}: the run has no answers on the original images")
    return RunView(path, run, records, scores)


def _kw(run: dict[str, Any]) -> dict[str, Any]:
    from medmm.probe.samples import prompts

    return {"prefix_reduction": run.get("prefix_reduction", "mean"),
            "judge_margin": prompts()["mediconfusion"]["judge_margin"]}


def _pct(v: float | None) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}"


def _ci(iv: Interval | None) -> str:
    if iv is None or math.isnan(iv.value):
        return "–"
    return f"{100 * iv.value:.1f} [{100 * iv.lo:.1f}, {100 * iv.hi:.1f}]"


def _signed(iv: Interval | None) -> str:
    if iv is None or math.isnan(iv.value):
        return "–"
    return f"{100 * iv.value:+.1f} [{100 * iv.lo:+.1f}, {100 * iv.hi:+.1f}]"


# ------------------------------------------------------------------ plots

def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_categories(view: RunView, cis: dict[str, dict[str, Interval]], path: str) -> str:
    """Per category: the model (with its interval), the random baseline and the blind controls."""
    plt = _plt()
    names = [m for m in view.metric_names if m != "invalid_rate"]
    main = view.scores["image"].point
    baseline = main.get("random_baseline", {})
    series = [("model", [cis["image"][m].value if m in cis["image"] else math.nan for m in names], cis["image"])]
    for v in BLIND:
        if v in cis:
            series.append((f"blind ({v})", [cis[v][m].value for m in names], cis[v]))
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(names), 3.6), dpi=110)
    width = 0.8 / (len(series) + 1)
    x = np.arange(len(names))
    for k, (label, vals, ci) in enumerate(series):
        lo = [max(0.0, vals[i] - ci[m].lo) if m in ci and not math.isnan(ci[m].lo) else 0 for i, m in enumerate(names)]
        hi = [max(0.0, ci[m].hi - vals[i]) if m in ci and not math.isnan(ci[m].hi) else 0 for i, m in enumerate(names)]
        ax.bar(x + k * width, [100 * v for v in vals], width, yerr=[[100 * v for v in lo], [100 * v for v in hi]],
               capsize=2, label=label)
    ax.bar(x + len(series) * width, [100 * (baseline.get(m) or math.nan) for m in names], width, label="random",
           color="#bbbbbb", hatch="//")
    ax.set_xticks(x + width * len(series) / 2, [n.replace("_", " ") for n in names], rotation=20, ha="right")
    ax.set_ylabel("%")
    ax.set_ylim(0, 100)
    ax.set_title(f"{view.bench}: {view.run['model']} ({view.run['mode']}), 95% CI over images")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_per_category(view: RunView, path: str) -> str:
    """Confusion pairs: set accuracy per category, beside the blind control and the random 25 %."""
    plt = _plt()
    cats = list(view.scores["image"].point["per_category"])
    series = [(v if v != "image" else "model", view.scores[v].point.get("per_category", {}))
              for v in ("image", *BLIND) if v in view.scores]
    fig, ax = plt.subplots(figsize=(max(5.5, 1.5 + 0.9 * len(cats)), 3.4), dpi=110)
    width = 0.8 / len(series)
    x = np.arange(len(cats))
    for k, (label, per) in enumerate(series):
        vals = [100 * (per.get(c, {}).get("set_accuracy") or 0.0) for c in cats]
        ax.bar(x + k * width, vals, width, label=label if label == "model" else f"blind ({label})")
    ax.axhline(100 * view.scores["image"].point["random_baseline"]["set_accuracy"], color="#888888", ls="--",
               label="random")
    ax.set_xticks(x + width * (len(series) - 1) / 2, [f"{c}\n(n={view.scores['image'].point['per_category'][c]['n']})"
                                                      for c in cats], fontsize=8)
    ax.set_ylabel("set accuracy %")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7)
    ax.set_title(f"confusion pairs per category: {view.run['model']} ({view.run['mode']})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_differences(rows: Sequence[tuple[str, Interval]], title: str, path: str) -> str:
    """A forest plot of paired differences (percentage points) with their intervals."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 0.45 * len(rows) + 1.2), dpi=110)
    y = np.arange(len(rows))[::-1]
    for yy, (label, iv) in zip(y, rows):
        if math.isnan(iv.value):
            continue
        ax.errorbar(100 * iv.value, yy, xerr=[[100 * (iv.value - iv.lo)], [100 * (iv.hi - iv.value)]], fmt="o",
                    capsize=3, color="C0")
    ax.axvline(0, color="#888888", lw=1)
    ax.set_yticks(y, [label for label, _ in rows])
    ax.set_xlabel("difference (percentage points), 95% paired bootstrap CI")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


# ------------------------------------------------------------------ report

@dataclass(frozen=True)
class Report:
    markdown: str
    html: str
    figures: list[str]
    data: dict[str, Any]


def build_report(path: str, out: str | None = None, n_boot: int = 1000, seed: int = 0) -> Report:
    """Write ``report.md``, ``report.html``, ``report.json`` and ``plots/*.png`` for a run folder."""
    view = open_run(path)
    out = out or path
    os.makedirs(os.path.join(out, "plots"), exist_ok=True)
    names = view.metric_names
    cis = {v: intervals(s, names, n_boot, seed) for v, s in view.scores.items() if v in ("image", *BLIND, "text")}
    gains = {v: intervals(view.scores["image"], names, n_boot, seed, baseline=view.scores[v])
             for v in BLIND if v in view.scores}
    figures = [plot_categories(view, cis, os.path.join(out, "plots", "categories.png"))]
    sections = [_header(view), _main_table(view, cis, gains)]
    data: dict[str, Any] = {"intervals": {v: {m: iv.to_dict() for m, iv in d.items()} for v, d in cis.items()},
                            "multimodal_gain": {v: {m: iv.to_dict() for m, iv in d.items()} for v, d in gains.items()}}
    if view.bench == "confusion":
        sections.append(_category_table(view))
        if view.scores["image"].point.get("per_category"):
            figures.append(plot_per_category(view, os.path.join(out, "plots", "per_category.png")))
    controls, figs, extra = _controls(view, n_boot, seed, out)
    sections += controls
    figures += figs
    data.update(extra)
    md = "\n\n".join(s for s in sections if s) + "\n\n" + "".join(
        f"![{os.path.basename(f)}](plots/{os.path.basename(f)})\n" for f in figures)
    page = _html(md, view)
    for name, text in (("report.md", md), ("report.html", page), ("report.json", json.dumps(data, indent=1))):
        with open(os.path.join(out, name), "w", encoding="utf-8") as fh:
            fh.write(text)
    return Report(md, page, figures, data)


def _header(view: RunView) -> str:
    r = view.run
    missing = r.get("missing_pairs") or {}
    lines = [f"# Probe report: {view.bench} pairs", "",
             f"- model: `{r['model']}` (fingerprint `{r['config']['model']}`), mode `{r['mode']}`, parser `{r['parser']}`",
             f"- data: `{os.path.basename(r['data'])}` (sha256 `{r['data_sha256'][:12]}`), "
             f"{len(view.scores['image'].units)} {'images' if view.bench == 'negation' else 'pairs'}, "
             f"{r['n_samples']} samples ({r['n_failed']} failed), controls: {', '.join(r['controls']) or 'none'}",
             f"- run config `{r['config_key']}`; versions: " + ", ".join(f"{k} {v}" for k, v in r["versions"].items())]
    if view.bench == "negation":
        lines.append(f"- invalid answers (neither yes nor no under the `{r['parser']}` parser): "
                     f"{_pct(view.scores['image'].point.get('invalid_rate'))} %")
    if missing:
        lines.append(f"- {len(missing)} pair(s) left out for missing images: {', '.join(sorted(missing)[:10])}")
    return "\n".join(lines)


def _main_table(view: RunView, cis: dict[str, dict[str, Interval]], gains: dict[str, dict[str, Interval]]) -> str:
    point = view.scores["image"].point
    base = point.get("random_baseline", {})
    head = ["metric", "model % [95% CI]", "random %"] + [f"blind {v} %" for v in BLIND if v in cis] + \
           [f"MG vs {v} (pp)" for v in gains]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in view.metric_names:
        cells = [m.replace("_", " ") + ("" if higher_is_better(view.bench, m) else " (lower is better)"),
                 _ci(cis["image"].get(m)),
                 _pct(base.get(m))]
        cells += [_ci(cis[v].get(m)) for v in BLIND if v in cis]
        cells += [_signed(gains[v].get(m)) for v in gains]
        rows.append("| " + " | ".join(cells) + " |")
    note = ("Intervals: percentile bootstrap over images (negation) or pairs (confusion), "
            f"{next(iter(cis['image'].values())).n_boot if cis['image'] else 0} resamples. "
            "MG = multimodal gain = score with the image minus score with the blind variant (none: no image, MMStar's "
            "control; blank or noise: a stand-in image), paired on the same images.")
    return "## Scores\n\n" + "\n".join(rows) + "\n\n" + note


def _category_table(view: RunView) -> str:
    per = view.scores["image"].point.get("per_category", {})
    if not per:
        return ""
    rows = ["| category | n | set acc. % | individual acc. % | confusion % | invalid % |", "|---|---|---|---|---|---|"]
    for c, d in per.items():
        rows.append(f"| {c} | {d['n']} | {_pct(d['set_accuracy'])} | {_pct(d['individual_accuracy'])} | "
                    f"{_pct(d['confusion'])} | {_pct(d['invalid_rate'])} |")
    return "## Per category\n\n" + "\n".join(rows)


def _controls(view: RunView, n_boot: int, seed: int, out: str) -> tuple[list[str], list[str], dict[str, Any]]:
    sections, figures, data = [], [], {}
    run = view.run
    if "none" in view.scores and "llm" in view.scores:  # MMStar's multimodal leakage, paired over the same units
        names = view.metric_names
        leak_ci = intervals(view.scores["none"], names, n_boot, seed, baseline=view.scores["llm"])
        rows = ["| metric | without image − LLM alone (pp) [95% CI] | ML (pp) |", "|---|---|---|"]
        for m in names:
            iv = leak_ci.get(m)
            ml = "–" if iv is None or math.isnan(iv.value) else f"{100 * max(0.0, iv.value):.1f}"
            rows.append(f"| {m.replace('_', ' ')} | {_signed(iv)} | {ml} |")
        sections.append("## Multimodal leakage (MMStar)\n\n" + "\n".join(rows) + "\n\n"
                        "ML = max(0, score of the model with no image − score of its language model alone): what the "
                        "multimodal training taught about the benchmark's answers without looking at images.")
        data["multimodal_leakage"] = {m: iv.to_dict() for m, iv in leak_ci.items()}
    tp = text_preference(view.records, run["mode"], run["parser"], **view.kw())
    if tp:
        ratio = tp["text_preference_ratio"]
        sections.append("## Text preference (misleading hint)\n\n"
                        f"On {tp['follows_text'] + tp['follows_image'] + tp['neither']} questions whose answer without "
                        f"the hint differed from the hint, the answer with the hint followed the text "
                        f"{tp['follows_text']} times and the image {tp['follows_image']} times "
                        f"(neither: {tp['neither']}): **text-preference ratio {_pct(ratio)} %** "
                        "(TPR = text / (text + image); 50 % = no preference).")
        data["text_preference"] = tp
    if view.bench == "negation":
        region = region_variant_scores(view.records, run["mode"], run["parser"])
        if region:
            rows = ["| shown as | position % [95% CI] | vs original (pp) |", "|---|---|---|"]
            diffs = []
            for v, s in region.items():
                ci = intervals(s, ["position"], n_boot, seed)["position"]
                d = intervals(s, ["position"], n_boot, seed, baseline=region["image"])["position"] if v != "image" else None
                rows.append(f"| {v} | {_ci(ci)} | {_signed(d)} |")
                if d is not None:
                    diffs.append((f"{v} - original", d))
            sections.append("## Region check (position questions)\n\n" + "\n".join(rows) + "\n\n"
                            "crop = the full image plus the finding's region cropped with context (ViCrop); draw = the region outlined. "
                            "A model that gains from the crop can see the finding but not place it in the whole image.")
            if diffs:
                figures.append(plot_differences(diffs, "region check: position accuracy",
                                                os.path.join(out, "plots", "region_check.png")))
            data["region_check"] = {v: s.point["position"] for v, s in region.items()}
    return sections, figures, data


def _inline(text: str) -> str:
    """Escaped text with `code` and **bold** spans."""
    out = html.escape(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", out)


def _html(md: str, view: RunView) -> str:
    """A self-contained page from the report's Markdown (headings, lists, tables, images)."""
    body: list[str] = []
    block = ""  # "table" | "list" | ""

    def close() -> None:
        nonlocal block
        if block:
            body.append("</table>" if block == "table" else "</ul>")
        block = ""

    for line in md.splitlines():
        if line.startswith("|"):
            cells = [_inline(c.strip()) for c in line.strip("|").split("|")]
            if set("".join(cells)) <= set("-"):
                continue
            tag = "td" if block == "table" else "th"
            if block != "table":
                close()
                body.append("<table>")
                block = "table"
            body.append("<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>")
        elif line.startswith("- "):
            if block != "list":
                close()
                body.append("<ul>")
                block = "list"
            body.append(f"<li>{_inline(line[2:])}</li>")
        else:
            close()
            if line.startswith("# "):
                body.append(f"<h1>{_inline(line[2:])}</h1>")
            elif line.startswith("## "):
                body.append(f"<h2>{_inline(line[3:])}</h2>")
            elif line.startswith("!["):
                src = html.escape(line[line.index("(") + 1:line.rindex(")")])
                body.append(f'<p><img src="{src}" alt="{src}"></p>')
            elif line.strip():
                body.append(f"<p>{_inline(line)}</p>")
    close()
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:.2em .5em;text-align:right}td:first-child{text-align:left}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>probe report: {html.escape(view.bench)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


# ------------------------------------------------------------------ compare

def compare_runs(path_a: str, path_b: str, out: str | None = None, n_boot: int = 1000, seed: int = 0) -> Report:
    """Paired differences B - A on the images both runs answered (``compare.md`` / ``.html`` / ``.json``)."""
    a, b = open_run(path_a), open_run(path_b)
    if a.bench != b.bench:
        raise InputError(f"cannot compare a {a.bench} run with a {b.bench} run")
    out = out or path_b
    os.makedirs(os.path.join(out, "plots"), exist_ok=True)
    sa, sb = a.scores["image"], b.scores["image"]
    shared = set(sa.units) & set(sb.units)
    if not shared:
        raise InputError("the two runs share no images: compare runs on the same data")
    names = a.metric_names
    diff = intervals(sb, names, n_boot, seed, baseline=sa)
    ca, cb = intervals(sa, names, n_boot, seed, baseline=None), intervals(sb, names, n_boot, seed, baseline=None)
    label = lambda v: f"`{v.run['model']}` {v.run['mode']} ({os.path.basename(os.path.normpath(v.path))})"  # noqa: E731
    rows = ["| metric | A % | B % | B - A (pp) [95% CI] |", "|---|---|---|---|"]
    for m in names:
        rows.append(f"| {m.replace('_', ' ')}{'' if higher_is_better(a.bench, m) else ' (lower is better)'} | {_ci(ca[m])} | "
                    f"{_ci(cb[m])} | {_signed(diff[m])} |")
    fig = plot_differences([(m, diff[m]) for m in names], "B - A, paired over shared images",
                           os.path.join(out, "plots", "compare.png"))
    same_data = a.run["data_sha256"] == b.run["data_sha256"]
    md = "\n".join([f"# Probe comparison: {a.bench} pairs", "", f"- A: {label(a)}", f"- B: {label(b)}",
                    f"- {len(shared)} shared {'images' if a.bench == 'negation' else 'pairs'} "
                    f"(A has {len(sa.units)}, B has {len(sb.units)}); "
                    f"{'same data file' if same_data else 'different data files: only shared units are compared'}",
                    "", "## Paired differences", "", *rows, "",
                    f"Paired percentile bootstrap over {'images' if a.bench == 'negation' else 'pairs'} "
                    f"({n_boot} resamples): each resample takes the same units for A and B.", "",
                    "![compare.png](plots/compare.png)", ""])
    data = {"a": a.path, "b": b.path, "n_shared": len(shared), "difference": {m: diff[m].to_dict() for m in names},
            "a_scores": {m: ca[m].to_dict() for m in names}, "b_scores": {m: cb[m].to_dict() for m in names}}
    page = _html(md, b)
    for name, text in (("compare.md", md), ("compare.html", page), ("compare.json", json.dumps(data, indent=1))):
        with open(os.path.join(out, name), "w", encoding="utf-8") as fh:
            fh.write(text)
    return Report(md, page, [fig], data)


def rescore(path: str) -> dict[str, Any]:
    """metrics.json of a run folder recomputed from its samples (e.g. after changing the parser)."""
    run, records = read_run(path)
    return summary(records, run["bench"], run["mode"], run["parser"], **_kw(run))
