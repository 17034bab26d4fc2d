"""Write medmm/models/tiny_tokenizer_corpus.json: the text the tiny models' tokenizer is trained on.

The tiny backend (medmm/models/tiny.py, layer L4) reads that file as package data, so the models
layer does not import the synthetic-study generator (L3) at run time. This script is the one place
that generates the text from ``medmm.synth``: synthetic reports of every finding type, the
prompts and answers the tests and the checkers use, and digits. Rerun it only on purpose (a
changed corpus changes every tiny model's vocabulary):

    .venv/bin/python scripts/make_tiny_tokenizer_corpus.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "medmm" / "models" / "tiny_tokenizer_corpus.json"


def corpus(seed: int = 0, n_reports: int = 300) -> list[str]:
    """medmm's own text: synthetic reports of every finding type, prompts, answers and digits."""
    from medmm.synth.reports import INDICATIONS, write_report
    from medmm.synth.truth import Finding

    rng = np.random.default_rng(seed)
    catalogue = [
        ("nodule", "lung", True, "upper lobe"), ("mass", "lung", True, "lower lobe"), ("cyst", "kidney", True, "kidney"),
        ("effusion", "pleura", True, "pleural space"), ("pneumothorax", "pleura", True, "apex"),
        ("consolidation", "lung", True, "lower lobe"), ("fracture", "spine", False, "lower thoracic vertebral body"),
        ("endotracheal_tube", "trachea", False, "trachea"), ("central_line", "superior vena cava", False, "svc"),
        ("pacemaker", "chest wall", False, "left chest wall"), ("chest_tube", "pleura", True, "pleural space"),
    ]
    texts = []
    for _ in range(n_reports):
        findings = []
        for k in rng.permutation(len(catalogue))[: int(rng.integers(0, 4))]:
            kind, organ, sided, where = catalogue[k]
            side = str(rng.choice(["left", "right"])) if sided else ("midline" if kind != "pacemaker" else "left")
            device = kind in ("endotracheal_tube", "central_line", "pacemaker", "chest_tube")
            findings.append(Finding(kind, organ, side, float(rng.integers(3, 60)), 100 + len(findings),
                                    category="device" if device else "lesion",
                                    severity=str(rng.choice(["small", "moderate", "large"])),
                                    location=f"{side} {where}" if sided else where))
        modality = str(rng.choice(["CT", "DX", "MR"]))
        indication = str(rng.choice(INDICATIONS["CT"]))
        texts.append(write_report(rng, findings, modality, bool(rng.random() < 0.4), indication))
    questions = [
        "Is there a {t} in the {s} lung? Answer yes or no.", "Is this a {m} image?", "Does this report contain an error?",
        "Which type of error does the report contain?", "Describe the finding in the box.",
        "Where is the {t}? Answer with a box.", "Answer: yes", "Answer: no",
    ]
    for q in questions:
        for t in ("nodule", "mass", "effusion", "pneumothorax", "fracture"):
            for s in ("left", "right"):
                texts.append(q.format(t=t, s=s, m=str(rng.choice(["CT", "MRI", "X-ray"]))))
    texts.append(" ".join(str(i) for i in range(1000)))
    texts.append("<box>(12,340),(560,78)</box> <ref>nodule</ref> yes no Yes No A B C D")
    return texts


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT
    texts = corpus()
    out.write_text(json.dumps({"seed": 0, "n_reports": 300, "texts": texts}, ensure_ascii=False, indent=0) + "\n",
                   encoding="utf-8")
    print(f"wrote {out}: {len(texts)} texts, {sum(map(len, texts)):,} characters")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
