"""Radiology reports written from the truth, with the phrasing variety real reports have.

Every present finding is stated (with its side, size and severity), absent findings only
ever appear negated ("No pneumothorax.", "No left pleural effusion."), uncertainty hedges
apply to present findings only ("malignancy cannot be excluded"), interval language appears
only when a prior exists. ``FINDING_TERMS`` is the vocabulary each finding type is written
with — the tests (and later the report checker) use it.
"""

from __future__ import annotations

import numpy as np

from medmm.synth.truth import Finding

FINDING_TERMS: dict[str, tuple[str, ...]] = {
    "nodule": ("nodule", "nodules"),
    "mass": ("mass", "masses"),
    "cyst": ("cyst", "cysts"),
    "effusion": ("effusion", "effusions"),
    "pneumothorax": ("pneumothorax",),
    "consolidation": ("consolidation",),
    "fracture": ("fracture",),
    "endotracheal_tube": ("endotracheal tube",),
    "central_line": ("central venous catheter", "central line"),
    "pacemaker": ("pacemaker",),
    "chest_tube": ("chest tube",),
}
NEGATION_CUES = ("no ", "without ", "negative for ", "free of ", "not seen", "absent")

INDICATIONS = {
    "CT": ["Cough.", "Shortness of breath.", "Chest pain.", "Staging.", "Follow-up.", "Weight loss.", "Trauma."],
    "CXR": ["Cough.", "Shortness of breath.", "Fever.", "Chest pain.", "Line placement.", "Preoperative."],
    "MR": ["Headache.", "Dizziness.", "Seizure.", "Follow-up.", "Visual disturbance."],
}


def _pick(rng: np.random.Generator, options: list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _size(rng: np.random.Generator, mm: float) -> str:
    if mm >= 30 and rng.random() < 0.5:
        return f"{mm / 10:.1f} cm"
    return f"{mm:.0f} mm"


def _a(text: str) -> str:
    """'a' or 'an' before a size or word ("an 8 mm", "an 11 mm", "a 12 mm")."""
    head = text.split()[0].split(".")[0]
    vowel = head[:1].lower() in "aeiou" if not head[:1].isdigit() else (head.startswith("8") or head in ("11", "18"))
    return ("an " if vowel else "a ") + text


def _interval(rng: np.random.Generator, f: Finding, comparison: bool) -> str:
    if not comparison or f.category == "device":
        return ""
    f.interval = str(rng.choice(["new", "unchanged", "increased"]))
    return {"new": ", new since the prior study", "unchanged": ", unchanged from prior",
            "increased": ", increased since the prior study"}[f.interval]


def positive_sentence(rng: np.random.Generator, f: Finding, comparison: bool, modality: str) -> str:
    """One sentence stating a present finding."""
    side, loc = f.side, f.location or ""
    it = _interval(rng, f, comparison)
    if f.type == "nodule":
        size = _size(rng, f.size_mm or 0)
        return _pick(rng, [
            f"{_a(size).capitalize()} nodule in the {loc}{it}.",
            f"{loc.capitalize()} nodule measuring {size}{it}.",
            f"There is {_a(size)} solid nodule in the {loc}{it}; malignancy cannot be excluded.",
        ])
    if f.type == "mass":
        size = _size(rng, f.size_mm or 0)
        if f.organ == "brain":
            return _pick(rng, [
                f"{_a(size).capitalize()} mass in the {loc} with surrounding edema{it}.",
                f"There is {_a(size)} heterogeneous mass in the {loc}{it}, suspicious for neoplasm.",
            ])
        return _pick(rng, [
            f"{_a(size).capitalize()} mass in the {loc}{it}.",
            f"There is {_a(size)} mass in the {loc}{it}, concerning for malignancy.",
        ])
    if f.type == "cyst":
        size = _size(rng, f.size_mm or 0)
        return _pick(rng, [f"{_a(size).capitalize()} simple cyst in the {loc}{it}.", f"{size} cyst in the {loc}{it}, likely benign."])
    if f.type == "effusion":
        sev = f.severity or "small"
        if side == "bilateral":
            return f"{sev.capitalize()} bilateral pleural effusions{it}."
        return _pick(rng, [f"{sev.capitalize()} {side} pleural effusion{it}.",
                           f"There is a {sev} {side} pleural effusion{it}."])
    if f.type == "pneumothorax":
        sev = f.severity or "small"
        return _pick(rng, [f"{sev.capitalize()} {side} pneumothorax{it}.", f"There is a {sev} {side} apical pneumothorax{it}."])
    if f.type == "consolidation":
        return _pick(rng, [f"Consolidation in the {loc}{it}, likely pneumonia.",
                           f"Focal consolidation in the {loc}{it}; infection is favored."])
    if f.type == "fracture":
        return _pick(rng, [f"Compression fracture of {_a(loc)}{it}.", f"There is a fracture of {_a(loc)}{it}."])
    if f.type == "endotracheal_tube":
        return "Endotracheal tube in place with the tip above the carina."
    if f.type == "central_line":
        s_ = (f.side or "right").capitalize()
        return _pick(rng, [f"{s_} internal jugular central venous catheter with tip in the superior vena cava.",
                           f"{s_}-sided central line terminates in the superior vena cava."])
    if f.type == "pacemaker":
        return f"{(f.side or 'left').capitalize()} chest wall pacemaker with leads in expected position."
    if f.type == "chest_tube":
        return f"{side.capitalize() if side else ''} chest tube in place.".strip()
    raise ValueError(f"no template for finding type {f.type!r}")


def _negatives(rng: np.random.Generator, present: list[Finding], modality: str) -> list[str]:
    types = {f.type for f in present}
    sides = {f.type: f.side for f in present}
    out: list[str] = []
    if modality in ("CT", "CXR"):
        if "pneumothorax" not in types:
            out.append(_pick(rng, ["No pneumothorax.", "There is no pneumothorax."]))
        elif sides["pneumothorax"] in ("left", "right"):
            other = "right" if sides["pneumothorax"] == "left" else "left"
            out.append(f"No {other} pneumothorax.")
        if "effusion" not in types:
            out.append(_pick(rng, ["No pleural effusion.", "No pleural effusions.", "The pleural spaces are free of effusion."]))
        elif sides["effusion"] in ("left", "right"):
            other = "right" if sides["effusion"] == "left" else "left"
            out.append(f"No {other} pleural effusion.")
        if "consolidation" not in types:
            out.append(_pick(rng, ["No focal consolidation.", "The lungs are without consolidation."]))
        if modality == "CT" and not types & {"nodule", "mass"}:
            out.append(_pick(rng, ["No suspicious pulmonary nodules.", "No pulmonary nodule or mass."]))
        if modality == "CT" and "fracture" not in types:
            out.append(_pick(rng, ["No acute fracture.", "Osseous structures without fracture."]))
        if modality == "CXR":
            out.append(_pick(rng, ["Heart size is normal.", "The cardiomediastinal silhouette is within normal limits."]))
    else:
        if "mass" not in types:
            out.append(_pick(rng, ["No intracranial mass.", "There is no mass or midline shift."]))
        out.append(_pick(rng, ["Ventricles are normal in size.", "No hydrocephalus."]))
    rng.shuffle(out)
    return out


def write_report(rng: np.random.Generator, findings: list[Finding], modality: str, comparison: bool,
                 indication: str | None) -> str:
    """FINDINGS + IMPRESSION (and optional INDICATION / COMPARISON) for one study."""
    kind = "CXR" if modality in ("DX", "CR") else modality
    lesions = [f for f in findings if f.category == "lesion"]
    devices = [f for f in findings if f.category == "device"]
    positives = [positive_sentence(rng, f, comparison, kind) for f in devices + lesions]
    body = positives + _negatives(rng, findings, kind)
    parts = []
    if indication:
        parts.append(f"INDICATION: {indication}")
    if comparison:
        prior = {"CT": "Prior CT of the chest.", "CXR": "Prior chest radiograph.", "MR": "Prior MRI of the brain."}[kind]
        parts.append(f"COMPARISON: {prior}")
    elif rng.random() < 0.6:
        parts.append("COMPARISON: None.")
    parts.append("FINDINGS: " + " ".join(body))
    if lesions:
        items = []
        for i, f in enumerate(lesions, 1):
            s = positive_sentence(np.random.default_rng(int(rng.integers(1 << 31))), f, False, kind)
            if f.interval:
                s = s.rstrip(".") + {"new": ", new.", "unchanged": ", unchanged.", "increased": ", increased."}[f.interval]
            items.append(f"{i}. {s}" if len(lesions) > 1 else s)
        if any(f.type == "nodule" for f in lesions) and rng.random() < 0.5:
            items.append("Recommend follow-up chest CT in 6 to 12 months.")
        parts.append("IMPRESSION: " + " ".join(items))
    else:
        normal = {"CT": ["No acute cardiopulmonary abnormality.", "Normal CT of the chest."],
                  "CXR": ["No acute cardiopulmonary process.", "Normal chest radiograph."],
                  "MR": ["Normal MRI of the brain.", "No acute intracranial abnormality."]}[kind]
        parts.append("IMPRESSION: " + _pick(rng, normal))
    return "\n\n".join(parts) + "\n"
