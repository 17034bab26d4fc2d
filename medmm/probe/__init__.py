"""medmm.probe: probing benchmarks for vision-language models on medical images.

* negation pairs (ProbMed-style): :mod:`medmm.probe.negation` reads and scores ProbMed files
  exactly; :mod:`medmm.probe.build` builds pairs for any annotated collection;
* confusion pairs (MediConfusion-style): :mod:`medmm.probe.confusion` reads ``dataset.json`` and
  scores; :mod:`medmm.probe.mine` mines new pairs with two encoders;
* :mod:`medmm.probe.parse`: robust answer parsing and each benchmark's reference parser;
* :mod:`medmm.probe.runner`: resumable runs on any model through the shared result cache, with
  blind / text-preference / region controls (:mod:`medmm.probe.controls`);
* :mod:`medmm.probe.report`: Markdown/HTML reports with paired bootstrap intervals and plots,
  and comparisons of two runs.

Names are imported lazily, so ``import medmm.probe`` loads no model code.
"""

from __future__ import annotations

from medmm._lazy import lazy_exports

_EXPORTS = {
    **{n: "medmm.probe.negation" for n in ("NegationQuestion", "NegationResponse", "read_questions", "read_responses",
                                            "write_questions", "write_responses", "score_negation")},
    **{n: "medmm.probe.confusion" for n in ("ConfusionPair", "read_dataset", "write_dataset", "resolve_images",
                                             "confusion_metrics", "outcomes", "read_predictions")},
    **{n: "medmm.probe.parse" for n in ("parse_yes_no", "parse_letter", "yes_no_correct", "letter_answer")},
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports("medmm.probe", _EXPORTS, globals())
