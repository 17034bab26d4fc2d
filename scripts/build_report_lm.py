"""Build the report plausibility model (word and word-pair counts) that ``rule_real_word`` reads.

Default (what ships as ``medmm/reports/report_lm.json``): medmm's own hand-written reports
(``tests/data/hand_reports.txt``, ``tests/data/reports_ct_mr.txt``), a hand-written phrase list
(``scripts/data/report_phrases.txt``) and synthetic reports from ``medmm.synth``. No licensed corpus
goes into the packaged model: the IU collection (``../shared/data/real_reports``) is CC BY-NC-ND,
so statistics derived from it are not shipped.

With ``--corpus FILE`` (a .jsonl/.csv/folder readable by ``medmm.reports.corpus.read_corpus``) the
model is trained on *your* reports as well and written where ``--out`` says; pass that file to the
checker with ``RulesConfig(lm_path=...)`` (``medmm check --lm FILE``). ``--ids-from`` restricts the
corpus to ids listed in a split file (for a dev/held-out protocol).

    python scripts/build_report_lm.py                                   # the packaged model
    python scripts/build_report_lm.py --corpus my_reports.jsonl --out /tmp/my_lm.json
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OWN_SOURCES = (os.path.join(ROOT, "tests", "data", "hand_reports.txt"), os.path.join(ROOT, "tests", "data", "reports_ct_mr.txt"))
PHRASES = os.path.join(ROOT, "scripts", "data", "report_phrases.txt")
PACKAGED = os.path.join(ROOT, "medmm", "reports", "report_lm.json")


# Template statements: each head noun with the words radiologists put before it (medmm authors' own lists).
HEADS: dict[str, tuple[str, ...]] = {
    "effusion": ("pleural", "small", "large", "moderate", "trace", "tiny", "layering", "loculated", "bilateral", "left",
                 "right", "subpulmonic", "pericardial", "no", "residual", "persistent", "new"),
    "effusions": ("pleural", "small", "large", "bilateral", "no", "moderate"),
    "granuloma": ("calcified", "small", "tiny", "punctate", "dense", "old", "stable", "a", "no"),
    "granulomas": ("calcified", "scattered", "multiple", "small", "splenic", "hilar"),
    "nodule": ("pulmonary", "calcified", "noncalcified", "solid", "spiculated", "small", "tiny", "lung", "thyroid",
               "adrenal", "dominant", "no", "nipple", "subpleural", "ground-glass"),
    "nodules": ("pulmonary", "calcified", "multiple", "scattered", "small", "bilateral", "no", "lung"),
    "opacity": ("airspace", "focal", "patchy", "streaky", "hazy", "linear", "nodular", "reticular", "retrocardiac",
                "basilar", "interstitial", "increased", "ground-glass", "confluent", "no", "lingular", "perihilar"),
    "opacities": ("airspace", "patchy", "streaky", "interstitial", "reticular", "bibasilar", "linear", "nodular", "hazy",
                  "increased", "bilateral", "scattered", "no", "perihilar"),
    "consolidation": ("focal", "airspace", "lobar", "dense", "patchy", "confluent", "no", "lobe", "basilar"),
    "atelectasis": ("subsegmental", "bibasilar", "basilar", "linear", "discoid", "platelike", "compressive", "mild",
                    "minimal", "dependent", "passive", "lobe", "no", "streaky", "adjacent"),
    "edema": ("pulmonary", "interstitial", "alveolar", "mild", "moderate", "no", "vasogenic", "soft", "tissue"),
    "pneumothorax": ("no", "small", "large", "apical", "tension", "left", "right", "residual", "tiny"),
    "pneumonia": ("lobe", "lobar", "no", "aspiration", "basilar", "lingular", "focal", "superimposed"),
    "cardiomegaly": ("mild", "moderate", "marked", "severe", "stable", "borderline", "no", "unchanged"),
    "nodes": ("lymph",), "node": ("lymph",),
    "lymph": ("hilar", "mediastinal", "paratracheal", "axillary", "calcified", "enlarged", "subcarinal", "prevascular",
              "supraclavicular", "no"),
    "spine": ("thoracic", "lumbar", "cervical", "thoracolumbar", "visualized", "the"),
    "aorta": ("thoracic", "tortuous", "calcified", "ectatic", "ascending", "descending", "abdominal", "unfolded", "the"),
    "knob": ("aortic",), "arch": ("aortic",), "valve": ("aortic", "mitral", "prosthetic", "tricuspid"),
    "calcification": ("aortic", "atherosclerotic", "vascular", "coronary", "arterial", "mitral", "annular", "costal"),
    "calcifications": ("aortic", "atherosclerotic", "vascular", "scattered", "splenic"),
    "silhouette": ("cardiac", "cardiomediastinal", "mediastinal", "heart"),
    "contours": ("mediastinal", "hilar", "cardiac", "cardiomediastinal"), "contour": ("mediastinal", "cardiac", "hilar"),
    "vascularity": ("pulmonary", "lung", "normal", "increased"), "vasculature": ("pulmonary", "normal"),
    "markings": ("interstitial", "lung", "bronchovascular", "increased", "vascular", "prominent"),
    "angles": ("costophrenic",), "angle": ("costophrenic", "cardiophrenic"), "sulci": ("costophrenic",),
    "hemidiaphragm": ("left", "right", "elevated", "elevation"), "diaphragm": ("flattened", "the"),
    "structures": ("osseous", "bony", "mediastinal", "soft"), "tissues": ("soft",),
    "abnormality": ("acute", "cardiopulmonary", "osseous", "bony", "focal", "no"),
    "disease": ("airspace", "acute", "cardiopulmonary", "degenerative", "granulomatous", "interstitial", "active",
                "lung", "obstructive", "pulmonary"),
    "process": ("acute", "cardiopulmonary", "inflammatory", "infectious", "granulomatous"),
    "fracture": ("rib", "acute", "displaced", "healed", "healing", "compression", "no", "old", "clavicle", "remote"),
    "fractures": ("rib", "healed", "old", "multiple", "no", "acute"),
    "deformity": ("compression", "wedge", "chronic", "contour"),
    "changes": ("degenerative", "postsurgical", "postoperative", "emphysematous", "fibrotic", "chronic", "scarring"),
    "scarring": ("apical", "biapical", "pleural", "parenchymal", "linear", "basilar", "mild"),
    "thickening": ("pleural", "apical", "bronchial", "peribronchial", "interstitial", "wall"),
    "hernia": ("hiatal", "large", "small", "diaphragmatic"),
    "lungs": ("the", "both", "hyperinflated", "hyperexpanded", "clear"), "lung": ("left", "right", "the", "both"),
    "lobe": ("upper", "lower", "middle"), "base": ("lung", "left", "right"), "apex": ("lung", "left", "right"),
    "bases": ("lung",), "apices": ("lung",), "hilum": ("left", "right"), "zone": ("upper", "lower", "mid"),
    "wires": ("sternotomy",), "clips": ("surgical", "cholecystectomy"), "tube": ("endotracheal", "chest", "nasogastric",
                                                                                  "enteric", "feeding"),
    "line": ("central", "picc", "pleural"), "catheter": ("venous", "central", "pigtail"), "leads": ("pacemaker",),
}
OBJECTS = ("effusion", "pneumothorax", "consolidation", "edema", "opacity", "nodule", "mass", "fracture",
           "atelectasis", "cardiomegaly", "lymphadenopathy", "infiltrate", "pneumonia", "disease", "abnormality")
LOBES = ("right upper lobe", "right middle lobe", "right lower lobe", "left upper lobe", "left lower lobe", "lingula",
         "left lung base", "right lung base", "left lung apex", "right lung apex", "left midlung", "right midlung")


def template_texts() -> list[str]:
    texts = [f"{mod} {head}." for head, mods in HEADS.items() for mod in mods]
    texts += [f"No {obj}." for obj in OBJECTS] + [f"No evidence of {obj}." for obj in OBJECTS]
    texts += [f"{kind} in the {lobe}." for kind in ("Opacity", "Nodule", "Atelectasis", "Consolidation", "Scarring",
                                                    "Granuloma", "Pneumonia") for lobe in LOBES]
    return texts


def own_texts(n_synth: int = 300) -> list[str]:
    from medmm.reports.corpus import read_corpus
    from medmm.synth import SMALL, synthesize

    texts = []
    for path in OWN_SOURCES:
        if os.path.isfile(path):
            texts += [r["report"] for r in read_corpus(path).rows]
    texts += template_texts() * 3  # each template pair counts as a phrase seen three times
    with open(PHRASES, encoding="utf-8") as fh:
        texts += [ln for ln in fh.read().splitlines() if ln.strip() and not ln.startswith("#")]
    with tempfile.TemporaryDirectory(prefix="medmm-lm-") as d:
        texts += [r["report"] for r in read_corpus(synthesize(d, n_synth, seed=7, config=SMALL, workers=1)).rows]
    return texts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=None, help="your own reports to add (not shipped)")
    ap.add_argument("--ids-from", default=None, help="a file of report ids (one a line) to keep from --corpus")
    ap.add_argument("--out", default=None, help=f"output JSON (default {os.path.relpath(PACKAGED, ROOT)})")
    args = ap.parse_args(argv)
    from medmm.reports.language import ReportLM

    texts = own_texts()
    source = "medmm hand-written reports + phrases + template statements + synthetic reports"
    if args.corpus:
        from medmm.reports.corpus import read_corpus

        rows = read_corpus(args.corpus).rows
        if args.ids_from:
            with open(args.ids_from, encoding="utf-8") as fh:
                keep = {ln.strip() for ln in fh if ln.strip()}
            rows = [r for r in rows if r["id"] in keep]
        texts += [r["report"] for r in rows]
        source += f" + {len(rows)} reports of {os.path.basename(args.corpus)}"
        if not args.out:
            print("--corpus needs --out: a model trained on your reports is not written into the package",
                  file=sys.stderr)
            return 2
    lm = ReportLM.from_texts(texts, source)
    out = args.out or PACKAGED
    lm.save(out)
    print(f"wrote {out}: {len(lm.unigrams)} words, {len(lm.bigrams)} word pairs ({source})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
