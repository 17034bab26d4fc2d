"""What a run with checker tasks leaves next to its model (written at the end of training).

```
output_dir/
  checker/vlm-checker.yaml  the checker config: prompts, image layout, SIMPLE threshold calibrated on the calib split
  checker/ensemble.json     the ensemble stacker fit on the calib split, keyed by the model's fingerprint
  checker.json              held-out figures: tuned, untuned, blind, rules, ensemble (SIMPLE, COMPLEX, per
                            type / error model / detectability, bootstrap intervals, caught what the rules missed)
  checker.md                the same as a table
```
``medmm check-eval DATA --checker vlm|ensemble --model hf:<output_dir>/model`` finds the first two.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from typing import Any, Sequence


def _rows(samples: list[Any], limit: int | None = None) -> list[dict[str, Any]]:
    from medmm.reports.checker_data import to_eval_rows

    rows = to_eval_rows([s for s in samples if getattr(s, "task", None) == "simple"])
    return rows[:limit] if limit else rows


def _untuned(cfg: Any, paths: dict[str, Any]) -> Any:
    from medmm.models import load

    base = paths.get("base")
    if base and os.path.isfile(os.path.join(base, "config.json")):
        return load("hf:" + base)
    return load(cfg.model.spec, **dict(cfg.model.options))


def youden_threshold(margins: Sequence[float], labels: Sequence[bool], config: Any) -> Any:
    """``config`` with its SIMPLE threshold moved to the margin that maximises Youden's J (recall − FPR) on the
    calibration split; the temperature of :func:`medmm.reports.vlm_checker.calibrate` is kept.

    F1 (what ``calibrate`` maximises) rewards flagging every report when errors are half the data and the margin
    separates them only partly (F1 = 0.67 at recall 1, FPR 1): the previous tuned model was calibrated there and
    flagged every report. The checker is judged on recall and the clean reports' FPR, so its operating point is
    chosen on them. One sorted pass (n log n)."""
    pairs = sorted(zip(margins, labels), key=lambda p: -p[0])
    pos = sum(1 for _, lab in pairs if lab)
    neg = len(pairs) - pos
    if not pos or not neg:
        return config
    best, best_t, tp, fp = -2.0, config.threshold, 0, 0
    for i, (m, lab) in enumerate(pairs):
        tp += bool(lab)
        fp += not lab
        if i + 1 < len(pairs) and pairs[i + 1][0] == m:
            continue
        j = tp / pos - fp / neg
        if j > best:
            nxt = pairs[i + 1][0] if i + 1 < len(pairs) else m - 1.0
            best, best_t = j, (m + nxt) / 2  # midway to the next margin: flags this one and those above
    config.threshold = float(best_t)
    config.calibrated_on = f"{config.calibrated_on}; threshold at the calibration split's best Youden's J {best:.3f}"
    return config


def finish_checker(cfg: Any, out: str, checker_config: Any, calib_samples: Sequence[Any], eval_samples: Sequence[Any],
                   tuned: Any, paths: dict[str, Any], data_paths: Sequence[str] | None = None) -> dict[str, Any]:
    """Calibrate, fit the stacker, evaluate (see the module docstring); returns the headline figures.

    ``cfg``: the run's FinetuneConfig; ``checker_config``: the VLM checker config it trained with; ``tuned``: the
    trained model; ``paths``: where the weights are (``base`` for the untuned model)."""
    from medmm.reports.checker import default_checker
    from medmm.reports.ensemble import features, fit
    from medmm.reports.vlm_checker import CHECKER_DIR, calibrate
    from medmm.reports.vlm_eval import caught_rules_missed, complex_report, score, simple_report, table_markdown

    folder = os.path.join(out, CHECKER_DIR)
    calib = _rows(list(calib_samples))
    ev = _rows(list(eval_samples), cfg.eval.checker_max_samples)
    if not calib or not ev:
        return {"skipped": "no calibration or evaluation checker samples"}
    y_cal = [bool(r["has_error"]) for r in calib]
    y = [bool(r["has_error"]) for r in ev]
    errors = [r["errors"][0] if r["errors"] else None for r in ev]
    groups = [r["study_id"] for r in ev]
    rules = default_checker(None)
    r_cal = [rules.check(r["report"], r.get("header")) for r in calib]
    r_ev = [rules.check(r["report"], r.get("header")) for r in ev]

    base_cfg = replace(checker_config)
    j_cal = score(tuned, calib, base_cfg)
    tuned_cfg = youden_threshold([j.margin for j in j_cal], y_cal,
                                 calibrate([j.margin for j in j_cal], y_cal, replace(base_cfg),
                                           source="calib split (held-out seed)"))
    tuned_cfg.save(os.path.join(folder, "vlm-checker.yaml"))
    fp = tuned.fingerprint()
    X_cal = [features(r.score, max((f.confidence for f in r.flags), default=0.0), j.margin, j.type_scores)
             for r, j in zip(r_cal, j_cal)]
    stacker = fit(X_cal, y_cal, fp, cfg.eval.checker_target_precision, fit_on=f"calib split, {len(calib)} reports")
    stacker.save(os.path.join(folder, "ensemble.json"))

    j_ev = score(tuned, ev, tuned_cfg)
    j_blind = score(tuned, ev, tuned_cfg, blind=True, complex_=False)
    untuned = _untuned(cfg, paths)
    m_un = [j.margin for j in score(untuned, calib, base_cfg, complex_=False)]
    u_cfg = youden_threshold(m_un, y_cal, calibrate(m_un, y_cal, replace(base_cfg), source="calib split"))
    j_un = score(untuned, ev, u_cfg, complex_=False)

    def pred(js: list[Any], c: Any) -> list[bool]:
        return [j.margin > c.threshold for j in js]

    rules_pred = [r.has_error for r in r_ev]
    ens_p = [stacker.probability(features(r.score, max((f.confidence for f in r.flags), default=0.0), j.margin,
                                          j.type_scores)) for r, j in zip(r_ev, j_ev)]
    ens_pred = [p >= stacker.threshold for p in ens_p]
    results = {
        "tuned": simple_report(y, pred(j_ev, tuned_cfg), [j.margin for j in j_ev], errors, groups),
        "untuned": simple_report(y, pred(j_un, u_cfg), [j.margin for j in j_un], errors, groups),
        "blind (tuned, blank images)": simple_report(y, pred(j_blind, tuned_cfg), [j.margin for j in j_blind], errors,
                                                     groups),
        "rules": simple_report(y, rules_pred, [r.score for r in r_ev], errors, groups),
        "ensemble (stacker)": simple_report(y, ens_pred, ens_p, errors, groups),
    }
    caught = {name: caught_rules_missed(y, rules_pred, [bool(v) for v in _preds(res, y, pred, j_ev, tuned_cfg,
                                                                            j_un, u_cfg, j_blind, ens_pred)[name]])
              for name, res in results.items() if name != "rules"}
    report = {"n_eval": len(ev), "n_calib": len(calib), "model_fingerprint": fp,
              "threshold": tuned_cfg.threshold, "untuned_threshold": u_cfg.threshold,
              "stacker": {"threshold": stacker.threshold, "target_precision": stacker.target_precision,
                          "calib": stacker.calib_metrics},
              "simple": results, "complex": complex_report(j_ev, errors), "caught_what_the_rules_missed": caught,
              "data": {"eval": data_paths[2] if data_paths else None},
              "note": "synthetic studies (medmm synth) with errors made by medmm.reports.checker_data: measured on "
                      "our own generator"}
    with open(os.path.join(out, "checker.json"), "w", encoding="utf-8") as fh:
        json.dump(report, fh, indent=2)
    with open(os.path.join(out, "checker.md"), "w", encoding="utf-8") as fh:
        fh.write(f"# Checker evaluation ({len(ev)} held-out reports, {sum(y)} with an error)\n\n")
        fh.write(table_markdown(results, caught))
        fh.write(f"\nCOMPLEX type accuracy: {report['complex'].get('type_accuracy')} "
                 f"(n={report['complex'].get('n')}, chance {report['complex'].get('chance')})\n")
    return {"checker": os.path.join(out, "checker.json"), "youden_j": results["tuned"]["youden_j"],
            "blind_youden_j": results["blind (tuned, blank images)"]["youden_j"],
            "untuned_youden_j": results["untuned"]["youden_j"],
            "ensemble_youden_j": results["ensemble (stacker)"]["youden_j"]}


def _preds(results: dict[str, Any], y: list[bool], pred: Any, j_ev: list[Any], tuned_cfg: Any, j_un: list[Any],
           u_cfg: Any, j_blind: list[Any], ens_pred: list[bool]) -> dict[str, list[bool]]:
    return {"tuned": pred(j_ev, tuned_cfg), "untuned": pred(j_un, u_cfg),
            "blind (tuned, blank images)": pred(j_blind, tuned_cfg), "ensemble (stacker)": ens_pred}


def evaluate_run(output_dir: str) -> dict[str, Any]:
    """:func:`finish_checker` for a finished run folder (its ``run.json``, model and generated checker data):
    re-evaluates, or evaluates a run whose end-of-training evaluation was skipped."""
    from medmm.checkertrain.tasks import checker_config, read_checker_samples
    from medmm.errors import InputError
    from medmm.finetune.config import build_config
    from medmm.models import load

    path = os.path.join(output_dir, "run.json")
    if not os.path.isfile(path):
        raise InputError(f"{output_dir}: no run.json (not a finished medmm finetune run)")
    with open(path, encoding="utf-8") as fh:
        info = json.load(fh)
    cfg = build_config(info["config"], label=path)
    data = os.path.join(output_dir, "data", "checker")
    calib_path = cfg.resolve(cfg.data.checker_calib) if cfg.data.checker_calib else os.path.join(data, "calib.jsonl")
    eval_path = cfg.resolve(cfg.data.eval) if cfg.data.eval else os.path.join(data, "eval.jsonl")
    spec = "hf:" + (info.get("model") or info["base"])
    tuned = load(spec, adapter=info["adapter"]) if info.get("adapter") else load(spec)
    return finish_checker(cfg, output_dir, checker_config(cfg), read_checker_samples(calib_path),
                          read_checker_samples(eval_path), tuned, {"base": info.get("base")},
                          (os.path.join(data, "train.jsonl"), calib_path, eval_path))
