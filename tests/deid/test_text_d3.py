"""Issue 20, D3 (report-text misses quoted by the review) and N9's scrubber half (linear time on
adversarial text). The phrasings below are written here, after the rules: a held-out check of the
shapes the review found, not a measure of recall on real reports (SECURITY.md gives the figures)."""

from __future__ import annotations

import time

import pytest

from medmm.deid import scrub_text

# (text, the PHI it holds) — the five quoted by the review first
MISSED = [
    ("Patient Jennifer Lopez-Garcia presents with cough.", "Jennifer Lopez-Garcia"),
    ("Reviewed by Fellow: Sarah Connor", "Sarah Connor"),
    ("PATIENT: smith, john", "smith, john"),
    ("Age: 102Y", "102"),
    ("Results discussed; call 555-1234 with questions.", "555-1234"),
    ("Pt Maria Delgado-Ruiz arrived by ambulance.", "Maria Delgado-Ruiz"),
    ("Dictated by Resident: Tom O'Neil", "Tom O'Neil"),
    ("Signed by Attending Radiologist: Priya Raman", "Priya Raman"),
    ("Name: NGUYEN, THANH", "NGUYEN, THANH"),
    ("Patient's age 097Y at the time of the exam.", "097"),
    ("Page the reading room at 555.0199 for the wet read.", "555.0199"),
    ("Discussed with Nurse Kelly Brandt at 14:05.", "Kelly Brandt"),
    # a second round: 31 more shapes tried here, 25 found; these five fixed (a lower-case "patient jane doe"
    # with no label or colon is still missed: SECURITY.md)
    ("Ordering: Wong, Amy", "Wong, Amy"),
    ("Pt name - John Doe", "John Doe"),
    ("Reported to nurse Carla Diaz", "Carla Diaz"),
    ("Date of birth: 05.01.1950", "05.01.1950"),
    ("Dr. van der Berg reviewed the images.", "van der Berg"),
]
CLEAN = [  # clinical phrasing next to the same cues: must survive unchanged
    "Patient Position: supine. Patient History: smoker.",
    "Patient tolerated the procedure well. Patient Motion Artifact limits evaluation.",
    "Age: 45Y. Age 89. Age: 120M (months).",
    "Follow-up in 3-6 months. Degenerative change at L4-L5 and C5-C6.",
    "Reviewed by the radiology team. Fellow review pending.",
    "Ejection fraction 55-60%. Series 3, image 120-145.",
    "Reported to the ED. Ordering: CT chest without contrast.",
]


@pytest.mark.parametrize("text, phi", MISSED, ids=[m[0][:30] for m in MISSED])
def test_quoted_misses_are_scrubbed(text, phi):
    out = scrub_text(text).text
    assert phi not in out, out
    for word in phi.replace(",", " ").split():
        if len(word) > 2 and not word.isdigit():
            assert word not in out, out


@pytest.mark.parametrize("text", CLEAN)
def test_clinical_text_next_to_the_new_cues_survives(text):
    assert scrub_text(text).text == text


ADVERSARIAL = {"a.": "a." * 50000, "Aa-": "Aa-" * 33334, "Aa ": "Aa " * 33334, "a.a@": "a.a@" * 25000,
               "Mr Aa-": "Mr Aa-" * 16667, "Aa, ": "Aa, " * 25000, "Dr. ": "Dr. " * 25000}


@pytest.mark.parametrize("name", list(ADVERSARIAL))
def test_scrubber_is_linear_on_adversarial_text(name):
    """100K characters: it ran for more than 16 s ("Aa-" * 33334: 14 s at 10K). Time grows ~linearly: the
    whole text costs less than 8x a quarter of it (quadratic would be 16x), and stays under 10 s."""
    text = ADVERSARIAL[name]
    quarter = text[: len(text) // 4]

    def best_of_3(t: str) -> float:  # the least CPU of three runs: one stall (GC, a busy host) is not the pattern
        times = []
        for _ in range(3):
            t0 = time.process_time()
            scrub_text(t)
            times.append(time.process_time() - t0)
            if times[-1] > 10.0:
                break
        return min(times)

    t_quarter = best_of_3(quarter)
    t_full = best_of_3(text)
    assert t_full < 10.0, t_full
    assert t_full < 8 * t_quarter + 0.2, (t_quarter, t_full)


# Verifier's round (issue 20 D3, written after reading the fixes, not tuned to them): 31 new variants of
# the same families, 27 found; these four were missed. Ages under 90 in DICOM AS form are not PHI.
VERIFIER_MISSED = [
    ("pt. Mary-Ann McDonald arrived by ambulance.", "Mary-Ann McDonald"),  # lower-case "pt." before a name
    ("Interpreted by: Chief Resident Paul Atreides", "Paul Atreides"),  # a two-word role between cue and name
    ("PATIENT NAME: van der berg, anna", "van der berg, anna"),  # lower-case "last, first" with particles
    ("Results: please phone 555 1234 with questions.", "555 1234"),  # seven digits split by a space
]
VERIFIER_CLEAN = [
    "pt. tolerated the procedure. Chief complaint: cough. Senior review pending.",
    "Phone call to the ward at 14:05 about the 3 cm mass.",
]


@pytest.mark.parametrize("text, phi", VERIFIER_MISSED, ids=[m[0][:30] for m in VERIFIER_MISSED])
def test_verifier_variants_are_scrubbed(text, phi):
    out = scrub_text(text).text
    assert phi not in out, out
    for word in phi.replace(",", " ").split():
        if len(word) > 3 and not word.isdigit():
            assert word not in out, out


@pytest.mark.parametrize("text", VERIFIER_CLEAN)
def test_verifier_clinical_text_survives(text):
    assert scrub_text(text).text == text


# Internal numbers after a cue (the limit SECURITY.md listed after round two): found now, and a bare
# number or a measurement after a look-alike word is left alone.
INTERNAL_NUMBERS = [
    ("Discussed with Dr Lee (pager 4-1234) at 10:15.", "4-1234"),
    ("Call ext. 45678 with the results.", "45678"),
    ("Please bleep #2231 on arrival.", "2231"),
    ("Extension: 3345, radiology reading room.", "3345"),
]
INTERNAL_CLEAN = [
    "Extension of the effusion to 12345 mm is not seen; extension 3 cm.",
    "Phone call at 14:05. CT 2019 compared.",
]


@pytest.mark.parametrize("text, phi", INTERNAL_NUMBERS, ids=[m[1] for m in INTERNAL_NUMBERS])
def test_pager_and_extension_numbers_are_scrubbed(text, phi):
    assert phi not in scrub_text(text).text


@pytest.mark.parametrize("text", INTERNAL_CLEAN)
def test_look_alike_words_before_numbers_survive(text):
    assert scrub_text(text).text == text
