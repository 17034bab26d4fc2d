"""Radiology vocabulary shared by the checker and the error injector (public on purpose).

Both sides of an evaluation need the same *words* — what a finding, a side, a lobe, a severity,
an interval word or a modality is called — but not the same *judgements*. This module holds only
vocabulary and facts of anatomy (which lobes exist on which side, how large a structure can be);
how a checker reads negation or decides a sentence is wrong stays in the checker's modules, and
how the injector makes an error stays in :mod:`medmm.reports.inject`. The injector imports this
module, never the checker (``tests/reports/test_independence.py`` enforces it), so an evaluation
with injected errors does not grade the checker on its own patterns.

Everything here is plain data (tuples, dicts, frozensets of lower-case words or regex fragments).
"""

from __future__ import annotations

# ------------------------------------------------------------------ findings
# finding type -> (organ, regex fragments naming it). Device types have organ "device".
FINDINGS: dict[str, tuple[str, tuple[str, ...]]] = {
    "nodule": ("lung", (r"nodules?", r"granulomas?")),
    "mass": ("any", (r"mass(?:es)?(?!\s+effect)", r"tumou?rs?")),
    "cyst": ("any", (r"cysts?",)),
    "lesion": ("any", (r"lesions?",)),
    "pericardial_effusion": ("heart", (r"pericardial\s+effusions?",)),
    "effusion": ("pleura", (r"(?:pleural\s+)?effusions?", r"hydrothorax")),
    "pneumothorax": ("pleura", (r"(?:hemo|hydro)?pneumothora(?:x|ces)",)),
    "consolidation": ("lung", (r"consolidations?", r"pneumonias?", r"airspace\s+(?:disease|opacit(?:y|ies))",
                               r"infiltrates?")),
    "atelectasis": ("lung", (r"atelectas[ie]s", r"atelectatic")),
    "scarring": ("lung", (r"scarring", r"scars?")),
    "opacity": ("lung", (r"opacit(?:y|ies)", r"opacification")),
    "edema": ("lung", (r"(?:pulmonary\s+)?edema", r"oedema")),
    "cardiomegaly": ("heart", (r"cardiomegaly", r"(?:enlarged|enlargement\s+of(?:\s+the)?)\s+(?:cardiac\s+silhouette|heart)",
                               r"(?:heart|cardiac\s+silhouette)(?:\s+size)?\s+(?:is\s+)?(?:\w+ly\s+)?enlarged")),
    "fracture": ("bone", (r"fractures?",)),
    "hemorrhage": ("brain", (r"hemorrhages?", r"haemorrhages?", r"hematomas?")),
    "lymphadenopathy": ("nodes", (r"lymphadenopathy", r"adenopathy", r"(?:enlarged\s+)?lymph\s+nodes?")),
    "embolism": ("vessels", (r"(?:pulmonary\s+)?embol(?:us|i|ism)",)),
    "endotracheal_tube": ("device", (r"endotracheal\s+tube", r"ET\s+tube", r"ETT")),
    "nasogastric_tube": ("device", (r"nasogastric\s+tube", r"NG\s+tube", r"enteric\s+tube", r"feeding\s+tube")),
    "central_line": ("device", (r"central\s+venous\s+catheter", r"central\s+line", r"PICC(?:\s+line)?",
                                r"(?:internal\s+jugular|subclavian)\s+(?:line|catheter)")),
    "pacemaker": ("device", (r"pacemaker", r"pacer", r"(?:ICD|AICD|defibrillator)")),
    "chest_tube": ("device", (r"chest\s+tube", r"pleural\s+(?:drain|catheter)", r"pigtail\s+catheter")),
}
DEVICE_TYPES = frozenset(k for k, (organ, _) in FINDINGS.items() if organ == "device")
# Types a reader treats as one family when a section paraphrases another ("airspace opacity" in the
# findings, "left base opacity" in the impression).
FINDING_FAMILIES: dict[str, str] = {"consolidation": "airspace", "opacity": "airspace", "atelectasis": "airspace",
                                    "nodule": "nodule", "mass": "nodule"}
# Findings that need attention now when present (as opposed to chronic or incidental ones).
ACUTE_FINDINGS = frozenset({"pneumothorax", "effusion", "consolidation", "edema", "hemorrhage", "embolism",
                            "pericardial_effusion"})
# Words that make a finding chronic, healed or incidental: "No acute ..." does not deny it.
CHRONIC_WORDS = frozenset("""calcified calcification healed healing old remote chronic stable unchanged prior
postsurgical postoperative sequela sequelae scar scarring scarred degenerative granulomatous longstanding
ununited nonacute residual known previously again redemonstrated persistent""".split())

# ------------------------------------------------------------------ sides, lobes, zones, sided anatomy
SIDES = ("left", "right")
BILATERAL_WORDS = ("bilateral", "bilaterally", "both", "bibasilar", "biapical", "bihilar", "bibasal")
# lobe name -> sides on which it exists (the lingula belongs to the left upper lobe)
LOBES: dict[str, tuple[str, ...]] = {"upper lobe": ("left", "right"), "middle lobe": ("right",),
                                     "lower lobe": ("left", "right"), "lingula": ("left",)}
ZONES = ("upper zone", "mid zone", "lower zone", "apex", "base", "midlung", "mid lung", "upper lung", "lower lung",
         "perihilar region", "costophrenic angle")
# Nouns that take a side in reports (a side swap on them is a laterality error).
SIDED_NOUNS = ("hemidiaphragm", "hemithorax", "lung", "hilum", "clavicle", "rib", "ribs", "shoulder", "humerus",
               "scapula", "breast", "kidney", "adrenal", "apex", "base", "costophrenic angle", "chest wall",
               "mainstem bronchus", "internal jugular", "subclavian", "axilla", "upper extremity", "atrium",
               "ventricle", "lobe", "hip", "knee", "ovary", "frontal lobe", "parietal lobe", "temporal lobe",
               "occipital lobe", "cerebellar hemisphere", "basal ganglia", "thalamus", "pleural space")

# ------------------------------------------------------------------ severity and interval words
SEVERITY_RANK: dict[str, int] = {"trace": 0, "tiny": 0, "minimal": 0, "minimally": 0, "borderline": 0, "slight": 0,
                                 "slightly": 0, "small": 1, "mild": 1, "mildly": 1, "moderate": 2, "moderately": 2,
                                 "large": 3, "severe": 3, "severely": 3, "extensive": 3, "marked": 3, "markedly": 3,
                                 "massive": 4, "massively": 4}
# interval words and the direction of change they state
INTERVAL_DIRECTION: dict[str, str] = {
    "new": "new", "newly": "new",
    "unchanged": "same", "stable": "same", "persistent": "still", "again": "still", "redemonstrated": "still",
    "increased": "more", "increasing": "more", "enlarging": "more", "worsened": "more",
    "worsening": "more", "progressed": "more", "progressive": "more",
    "decreased": "less", "decreasing": "less", "improved": "less", "improving": "less", "smaller": "less",
    "resolved": "gone", "resolving": "less", "cleared": "gone",
}
# phrases that name a prior study inside a sentence ("unchanged from 3/4/2021", "since the prior")
PRIOR_REFERENCE = (r"(?:from|since|than|to|with)\s+(?:the\s+)?(?:prior|previous|last|earlier|recent|old)",
                   r"(?:from|since|than|to|on)\s+\d{1,4}[/.-]\d{1,2}(?:[/.-]\d{1,4})?",
                   r"(?:from|since|on)\s+XXXX",  # a date removed by de-identification
                   r"compared\s+(?:with|to)\s+(?!(?:the\s+)?(?:left|right|contralateral|other)\b)",
                   r"comparison\s+(?:with|to)", r"prior\s+(?:study|studies|exam|examination|radiograph|film|ct|mri?|"
                   r"chest|images?)", r"previous(?:ly)?", r"outside\s+(?:study|films?)", r"dated")
NO_PRIOR_PHRASES = (r"none", r"no\s+prior", r"no\s+previous", r"not\s+available", r"n/?a", r"no\s+comparison",
                    r"none\s+available", r"no\s+comparisons?\s+available")

# ------------------------------------------------------------------ modality, body region, sex, view
MODALITY_WORDS: dict[str, str] = {
    "CT": r"\b(?:CT|CTA|computed\s+tomography)\b(?!\s+ratio)",  # "CT ratio": the cardiothoracic ratio
    "MR": r"\b(?:MRI|MR|MRA|magnetic\s+resonance)\b",
    "XR": r"(?i:\b(?:radiographs?|x-?rays?|chest\s+films?|(?:PA|AP)\s+and\s+lateral|frontal\s+and\s+lateral)\b)",
    "US": r"(?i:\b(?:ultrasound|sonograph(?:y|ic)?|sonogram)\b)",
}
MODALITY_GROUP = {"CT": "CT", "MR": "MR", "DX": "XR", "CR": "XR", "DR": "XR", "RG": "XR", "US": "US"}
# Words that put a sentence outside *this* study: priors, outside studies, recommendations, hypotheticals.
OTHER_STUDY_CUES = ("prior", "previous", "compar", "recommend", "follow-up", "followup", "follow up", "consider",
                    "correlat", "outside", "earlier", "dated", "if clinically", "could be", "may be", "might",
                    "would", "should", "suggest", "further evaluation", "benefit", "if there is", "if needed",
                    "can be obtained", "as needed", "advised", "ordered", "scheduled", "known", "history",
                    "better evaluated", "see ", "review")
REGION_WORDS: dict[str, str] = {
    "HEAD": r"\b(?:brain|intracranial|cerebr\w+|cerebell\w+|(?:lateral|third|fourth)\s+ventricles?|midline\s+shift|"
            r"skull|sella|white\s+matter|gray\s+matter)\b",
    "CHEST": r"\b(?:lungs?|pleural|pneumothorax|mediastin\w*|pulmonary|cardiomediastinal|hila|hilar)\b",
}
BODY_GROUP = {"HEAD": "HEAD", "BRAIN": "HEAD", "SKULL": "HEAD", "CHEST": "CHEST", "THORAX": "CHEST", "LUNG": "CHEST"}
FEMALE_ANATOMY = r"\b(?:uterus|uterine|ovar(?:y|ies|ian)|endometri\w+|cervix|fallopian|vagina\w*)\b"
MALE_ANATOMY = r"\b(?:prostat\w+|testes|testis|testicular|scrot\w+|seminal\s+vesicles?|penile)\b"
VIEW_WORDS = {"PA": r"\bPA\b(?!\s+and\s+AP)", "AP": r"\b(?:AP|anteroposterior|portable)\b",
              "LATERAL": r"(?i:\blateral\s+(?:view|radiograph|projection)s?\b|\band\s+lateral\b)"}

# ------------------------------------------------------------------ sizes a named structure can have
# structure regex -> (smallest, largest) plausible single dimension in mm, from anatomy and the
# definitions radiologists use (Fleischner: a nodule is < 30 mm; a "mass" is >= 30 mm in the lung, and
# anything called a mass is at least several mm; a main pulmonary artery is ~15-45 mm wide).
STRUCTURE_SIZE_MM: dict[str, tuple[float, float]] = {
    r"(?:main\s+)?pulmonary\s+arter(?:y|ies)|pulmonary\s+trunk": (12.0, 60.0),
    r"(?:ascending\s+|descending\s+|thoracic\s+|abdominal\s+)?aorta|aortic\s+(?:root|arch|diameter)": (12.0, 110.0),
    r"nodules?|granulomas?": (1.0, 30.0),
    r"mass(?:es)?": (8.0, 250.0),
    r"lymph\s+nodes?|nodes?": (2.0, 80.0),
    r"trachea": (8.0, 35.0),
    r"cysts?": (1.0, 250.0),
    r"kidneys?": (40.0, 160.0),
    r"spleen": (40.0, 250.0),
    r"thyroid": (5.0, 120.0),
    r"effusions?|pneumothorax": (2.0, 250.0),
    r"aneurysm": (20.0, 150.0),
    r"(?:endotracheal|ET)\s+tube\s+tip|tip": (0.0, 150.0),
}
UNITS_MM = {"mm": 1.0, "millimeter": 1.0, "millimeters": 1.0, "millimetre": 1.0, "millimetres": 1.0,
            "cm": 10.0, "centimeter": 10.0, "centimeters": 10.0, "centimetre": 10.0, "centimetres": 10.0}

# ------------------------------------------------------------------ organs that qualify a finding's site
SITE_WORDS: dict[str, str] = {
    "thyroid": "thyroid", "adrenal": "adrenal", "adrenals": "adrenal", "liver": "liver", "hepatic": "liver",
    "kidney": "kidney", "renal": "kidney", "spleen": "spleen", "splenic": "spleen", "pancreas": "pancreas",
    "pancreatic": "pancreas", "breast": "breast", "pericardial": "pericardium", "pleural": "pleura",
    "lung": "lung", "lungs": "lung", "pulmonary": "lung", "lobe": "lung", "lingula": "lung", "mediastinal": "mediastinum",
    "mediastinum": "mediastinum", "hilar": "hilum", "hila": "hilum", "rib": "bone", "ribs": "bone", "clavicle": "bone",
    "spine": "bone", "vertebral": "bone", "humerus": "bone", "sternum": "bone", "sternal": "bone", "osseous": "bone",
    "bone": "bone", "bones": "bone", "axillary": "axilla", "brain": "brain", "bowel": "bowel", "gallbladder": "gallbladder",
    "joint": "joint", "soft": "soft tissue", "subcutaneous": "soft tissue", "laryngeal": "larynx", "larynx": "larynx",
    "cerebral": "brain", "intracranial": "brain", "gastric": "stomach", "stomach": "stomach",
    "esophageal": "esophagus", "tracheal": "trachea", "bronchial": "airway", "endobronchial": "airway",
    "ovarian": "ovary", "uterine": "uterus", "prostate": "prostate", "pelvic": "pelvis", "scrotal": "scrotum",
    "parotid": "parotid", "neck": "neck", "orbital": "orbit", "spinal": "spine canal", "bony": "bone",
    "skeletal": "bone", "screw": "device", "screws": "device", "hardware": "device", "wire": "device",
    "wires": "device", "fixation": "device", "lead": "device", "leads": "device", "catheter": "device",
}
