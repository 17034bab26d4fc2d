"""The rules of medmm/reports/rules_findings.py on made-up findings (no report text of any corpus): each rule's
flag, its span and related span, and the look-alikes it must leave alone."""

from __future__ import annotations

import pytest

from medmm.reports.checker import RulesChecker, RulesConfig

CK = RulesChecker(RulesConfig(threshold=0.0))


def _flags(text: str, rule: str) -> list:
    return [f for f in CK.check(text).flags if f.rule == rule]


@pytest.mark.parametrize("text", [
    "FINDINGS: The right hilar node has increased from 1.6 cm to 0.9 cm.",
    "FINDINGS: Further increase in size of the pelvic hematoma, measuring 6.1 x 3.0 cm, previously 7.4 x 4.2 cm.",
    "FINDINGS: The gastric mass has increased in size, previously 6.3 x 4.8 cm, presently 4.1 x 3.5 cm.",
    "FINDINGS: Nodules have decreased in size since 3/4/2022. For example a 17 mm nodule, previously 9 mm.",
])
def test_interval_direction_sees_sizes_that_went_the_other_way(text):
    flags = _flags(text, "interval_direction")
    assert len(flags) == 1
    assert flags[0].text.lower().startswith(("increase", "decrease"))
    assert flags[0].related  # the prior size


@pytest.mark.parametrize("text", [
    "FINDINGS: The right hilar node has decreased from 1.6 cm to 0.9 cm.",
    "FINDINGS: Slight decrease in size of the nodes, for example 1.4 cm, previously 2.1 cm, and 2.3 cm, previously "
    "2.2 cm.",  # one went the stated way; the other changed by less than a remeasurement
    "FINDINGS: No increase in the 8 mm nodule, previously 9 mm.",  # a denied change
    "FINDINGS: Dominant mass measuring 3.6 x 2.2 cm, previously 3.7 x 2.1 cm.",  # no change word
    "FINDINGS: Nodules have decreased in size. A 9 mm nodule is new. Another 5 mm nodule, previously 4 mm.",
    # a unit after each number: one size each, not 3.0 cm read against 5.0 cm (findings_sizes.SIZE)
    "FINDINGS: The collection has increased, now 9.0 cm x 3.0 cm, previously 5.0 cm x 4.0 cm.",
])
def test_interval_direction_leaves_consistent_sizes_alone(text):
    assert not _flags(text, "interval_direction")


def test_interval_denied_shows_both_sentences():
    text = "FINDINGS: Scattered nodules up to 3 mm. These are all enlarged since 2/4/2022. No new or enlarging nodules."
    flags = _flags(text, "interval_denied")
    assert len(flags) == 1 and flags[0].text.startswith("These are all enlarged")
    assert flags[0].related[0].text == "No new or enlarging nodules."


@pytest.mark.parametrize("text", [
    "FINDINGS: New 3 mm right lower lobe nodules. No new suspicious nodule or consolidation.",  # qualified denial
    "FINDINGS: New 11 mm thyroid nodule. No new pulmonary nodules.",  # another organ
    "FINDINGS: Enlarged 2 cm nodule. No new nodules.",  # growth, and the denial is of new ones only
    "FINDINGS: New small right pleural effusion. No new nodules.",  # another kind
])
def test_interval_denied_leaves_other_findings_alone(text):
    assert not _flags(text, "interval_denied")


@pytest.mark.parametrize("text", [
    "FINDINGS: New low-density 2.0 cm subcutaneous nodule, unchanged.",
    "FINDINGS: Several small nodules in the left lower lobe are new and similar.",
    "FINDINGS: The 4 mm nodule in the right upper lobe is unchanged and new.",
])
def test_new_and_unchanged_in_one_sentence_is_interval_clash(text):
    # one rule for one sentence (rules_mention.interval_clash); interval_new_unchanged reads two sentences only
    assert len(_flags(text, "interval_clash")) == 1
    assert not _flags(text, "interval_new_unchanged")


def test_new_and_unchanged_findings_side_by_side():
    text = "FINDINGS: New 5 mm nodule and unchanged 3 mm nodule in the right upper lobe."
    assert not _flags(text, "interval_new_unchanged") and not _flags(text, "interval_clash")


def test_resected_lobe():
    flags = _flags("FINDINGS: Status post right upper lobectomy. Stable 2 mm nodule in the right upper lobe.",
                   "resected_lobe")
    assert len(flags) == 1 and flags[0].text == "right upper lobe" and flags[0].related[0].text.endswith("lobectomy")
    for clean in ("FINDINGS: Status post right upper lobectomy. Stable 2 mm nodule in the right lower lobe.",
                  "FINDINGS: Status post right upper lobectomy. Postsurgical changes of the right upper lobe.",
                  "FINDINGS: 2 cm mass in the right upper lobe. Candidate for right upper lobectomy.",
                  "FINDINGS: Status post right upper lobe wedge resection. Nodule in the right upper lobe."):
        assert not _flags(clean, "resected_lobe"), clean


def test_a_right_only_fissure_named_left_in_ct_findings():
    # rules_anatomy.nonexistent_fissure (one rule for radiographs and CT; rules_findings had a twin of it)
    assert _flags("FINDINGS: Nodularity in the left minor fissure.", "nonexistent_fissure")
    assert not _flags("FINDINGS: Nodularity in the right minor fissure. Left major fissure clear.",
                      "nonexistent_fissure")


def test_size_class():
    assert _flags("FINDINGS: Unchanged sub-5 mm nodules, for example 9 mm nodule in the left upper lobe.", "size_class")
    assert not _flags("FINDINGS: Subcentimeter nodules and a 2.4 cm mass in the right upper lobe.", "size_class")


@pytest.mark.parametrize("text, hit", [
    ("FINDINGS: A large nodule is seen in the right middle lobe, measuring 3 mm.", True),
    ("FINDINGS: Unchanged tiny scattered lung nodules measuring up to 4 cm.", True),
    ("FINDINGS: A small nodule is seen in the right middle lobe, measuring 3 mm.", False),
    ("FINDINGS: Minimal residual fluid collection in the flank measuring 2.4 x 1.3 cm.", False),
    ("FINDINGS: A large effusion and a nodule measuring 3 mm.", False),  # the size is another finding's
])
def test_severity_measured(text, hit):
    assert bool(_flags(text, "severity_measured")) is hit


def test_interval_new_unchanged_across_an_anaphor():
    flags = _flags("FINDINGS: There are two new nodules in the left upper lobe. These are unchanged from 11/8/2023.",
                   "interval_new_unchanged")
    assert len(flags) == 1 and flags[0].text.startswith("There are two new") and flags[0].related
    assert not _flags("FINDINGS: There are two nodules in the left upper lobe. These are unchanged from 11/8/2023.",
                      "interval_new_unchanged")
    assert not _flags("FINDINGS: New 3 mm nodule in the left upper lobe. The heart is unchanged in size.",
                      "interval_new_unchanged")


def test_interval_no_prior_reads_a_no_prior_sentence_of_the_body():
    # no COMPARISON section: the body's own "no prior" sentence is read (rules_single.interval_no_prior)
    text = "FINDINGS: There are no comparison studies. There is a new laceration of the scalp."
    flags = _flags(text, "interval_no_prior")
    assert len(flags) == 1 and flags[0].text == "There is a new laceration of the scalp."
    assert flags[0].related[0].text.startswith("There are no comp")
    weak = _flags("FINDINGS: There are no comparison studies. Stable right pleural effusion.", "interval_no_prior_weak")
    assert len(weak) == 1 and weak[0].text == "Stable right pleural effusion."
    for clean in ("FINDINGS: There are no comparison studies. There is a laceration of the scalp.",
                  "FINDINGS: No prior studies. Follow-up CT in 3 months would show any new nodule.",
                  "FINDINGS: Stable right pleural effusion."):
        assert not _flags(clean, "interval_no_prior") and not _flags(clean, "interval_no_prior_weak"), clean


@pytest.mark.parametrize("text, hit", [
    ("FINDINGS: No enlarged supraclavicular, axillary, mediastinal, or hilar lymph nodes. Few prominent nodes "
     "including a 19 mm subcarinal node.", True),
    ("FINDINGS: No enlarged mediastinal lymph nodes. A 19 mm subcarinal node.", True),
    ("FINDINGS: No enlarged mediastinal lymph nodes. A 9 mm subcarinal node.", False),  # not enlarged
    ("FINDINGS: No enlarged mediastinal lymph nodes. A 2.0 cm right axillary node.", False),  # another station
    ("FINDINGS: 1.9 x 0.6 cm paraesophageal node. No enlarged mediastinal lymph nodes elsewhere.", False),
    ("FINDINGS: No enlarged hilar lymph nodes. A 1.9 x 0.7 cm hilar node.", False),  # short axis 7 mm
    ("FINDINGS: No enlarged lymph nodes. A 19 mm subcarinal node in long axis.", False),
])
def test_node_size_denied(text, hit):
    assert bool(_flags(text, "node_size_denied")) is hit


@pytest.mark.parametrize("text, hit", [
    ("FINDINGS: Normal caliber ascending aorta measuring 4.6 cm.", True),
    ("FINDINGS: Normal calibre ascending aorta measuring 4.6 cm x 4.5 cm.", True),  # one size, a unit after each number
    ("FINDINGS: Normal calibre ascending aorta measuring 3.2 cm x 3.1 cm.", False),
    ("FINDINGS: Aneurysmal main pulmonary artery measuring 22 mm.", True),
    ("FINDINGS: Normal caliber ascending aorta measuring 3.2 cm.", False),
    ("FINDINGS: Stable mild dilatation of the ascending aorta measuring 4.3 cm.", False),
    ("FINDINGS: Normal caliber aorta. Main pulmonary artery 3.4 cm.", False),  # two sentences: another reading
    ("FINDINGS: Normal caliber aorta and a 3.4 cm main pulmonary artery.", False),  # two vessels
])
def test_caliber_measured(text, hit):
    assert bool(_flags(text, "caliber_measured")) is hit


def test_patient_for_patent_is_a_homophone():
    """Language-pack data added with these rules (a chest CT dictation slip): "airways are patient"."""
    assert _flags("FINDINGS: The central airways are patient. The patient is status post CABG.", "homophone")
    assert not _flags("FINDINGS: The central airways are patent. The patient is status post CABG.", "homophone")


@pytest.mark.parametrize("text, hit", [
    ("FINDINGS: Sagittal images were preformed through the lumbar spine.", True),
    ("FINDINGS: Sagittal images were performed through the lumbar spine.", False),
    ("FINDINGS: A preformed drainage catheter is in place.", False),  # the adjective: a catheter shaped beforehand
    ("FINDINGS: Disc generation at L4-5 with mild narrowing.", True),
    ("FINDINGS: Mild generative changes of the thoracic spine.", True),
    ("FINDINGS: Disc degeneration at L4-5. Mild degenerative changes.", False),
    ("FINDINGS: Reformatted images were generated in the sagittal plane.", False),
    ("FINDINGS: Small left pleural diffusion.", True),
    ("FINDINGS: No pneumothorax or pleural diffusion.", True),
    ("FINDINGS: Restricted diffusion in the left frontal lobe. Diffusion-weighted images.", False),
])
def test_well_known_dictation_slips_are_homophones(text, hit):
    """Session 8: "preformed" for "performed", "generation/generative" for "degeneration/degenerative" in a spine or
    joint, "diffusion" for "effusion" beside the pleura; the same words used as meant are not flagged. The rule
    itself is asked (in the checker's output a real_word flag on the same words may stand for it)."""
    from medmm.reports.analysis import analyze
    from medmm.reports.rules_text import rule_homophone

    assert bool(rule_homophone(analyze(text))) is hit


@pytest.mark.parametrize("text, hit", [
    ("FINDINGS: Stable 9 mm nodule in the right upper lobe, previously 4 mm.", True),
    ("FINDINGS: Stable 5 mm nodule in the right upper lobe, previously 4 mm.", False),  # a remeasurement
    ("FINDINGS: Unchanged 3.6 x 2.2 cm mass, previously 3.7 x 2.1 cm.", False),
])
def test_interval_direction_unchanged_against_a_size_that_changed(text, hit):
    assert bool(_flags(text, "interval_direction")) is hit


@pytest.mark.parametrize("text, hit", [
    ("FINDINGS:\nLUNGS: No consolidation.\nPLEURA: Normal. Small right pleural effusion.", True),
    ("FINDINGS:\nLYMPH NODES: Normal. Enlarged 16 mm right hilar lymph node.", True),
    ("FINDINGS:\nLUNGS: No consolidation.\nPLEURA: Normal. No pleural effusion or pneumothorax.", False),
    ("FINDINGS:\nPLEURA: Normal.\nLUNGS: Small right lower lobe nodule.", False),  # another sub-heading
    ("FINDINGS: Normal. Small right pleural effusion.", False),  # no sub-heading
])
def test_normal_heading(text, hit):
    assert bool(_flags(text, "normal_heading")) is hit


@pytest.mark.parametrize("text", [
    "FINDINGS:\nPLEURA: " + "Normal. " * 6000 + "Small right pleural effusion.",
    "FINDINGS: " + "No new nodules. New thyroid nodule. " * 1500,
    "FINDINGS: " + "No enlarged hilar lymph nodes. A 19 mm axillary node. " * 1000,
    "FINDINGS: Increased " + "5 mm, previously 4 mm, " * 2500,
    "FINDINGS: " + "New nodule. These are unchanged. " * 2000,
    "FINDINGS: " + "3 mm nodules, new. No new nodules. Nodules are new and stable. " * 800,
])
def test_findings_rules_stay_linear_on_repeated_statements(text):
    """About 50,000 characters of one repeated statement: each findings rule reads it in well under a second (a
    walk or pairing per statement would be quadratic)."""
    import time

    from medmm.reports.analysis import analyze
    from medmm.reports.registry import rule_functions

    a = analyze(text)
    for fn, _ in rule_functions():
        if ".rules_findings" in fn.__module__:
            t0 = time.perf_counter()
            fn(a, None)
            assert time.perf_counter() - t0 < 1.0, fn.__name__


@pytest.mark.parametrize("text,hit", [
    # a statement closing "new" in findings that deny new nodules (interval_denied)
    ("FINDINGS: 2 to 3 mm right middle lobe nodules (6:140), new. No new or enlarging pulmonary nodules.",
     "interval_denied"),
    # new and unchanged said together in one sentence (interval_clash)
    ("FINDINGS: The tree-in-bud opacities in the left lower lobe are new and similar.", "interval_clash"),
])
def test_interval_rules_read_new_said_at_the_end(text, hit):
    assert _flags(text, hit)
    assert not _flags(text.replace("new and similar", "unchanged and similar").replace(", new.", ", stable."), hit)
