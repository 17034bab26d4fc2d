"""Causes of false alarms on real CT/MR text, and the CT/MR error family a reader sees (issue 21 item 5), on made-up
sentences in the style of the dev corpus (datasets/mtsamples-ct-mr.md; no corpus text here)."""

from __future__ import annotations

import pytest

from medmm.reports import build_checker

CT_HEAD = {"modality": "CT", "body_part": "HEAD"}
CT_CHEST = {"modality": "CT", "body_part": "CHEST"}
MR_BRAIN = {"modality": "MR", "body_part": "BRAIN"}
DX_CHEST = {"modality": "DX", "body_part": "CHEST"}


@pytest.fixture(scope="module")
def checker():
    return build_checker("rules")


def rules(checker, text: str, header: dict | None = None) -> list[tuple[str, str]]:
    return [(f.rule, f.text) for f in checker.check(text, header).flags]


def test_a_word_the_radiograph_model_never_saw_is_no_confusion_in_a_ct_without_support(checker):
    """'right cheek' in a CT of the face: the packaged model (radiograph text) predicts 'right chest' only weakly
    and nothing after the word supports it; in a chest radiograph the same words are still flagged."""
    text = "FINDINGS: There is soft tissue swelling of the right cheek.\n\nIMPRESSION: Soft tissue swelling."
    assert ("real_word", "cheek") not in rules(checker, text, CT_HEAD)
    assert ("real_word", "cheek") in rules(checker, text, DX_CHEST)


def test_without_a_header_the_examination_line_names_the_modality(checker):
    text = ("EXAM: CT maxillofacial without contrast.\n\nFINDINGS: There is soft tissue swelling of the right "
            "cheek.\n\nIMPRESSION: Soft tissue swelling.")
    assert ("real_word", "cheek") not in rules(checker, text)
    assert ("real_word", "cheek") in rules(checker, text.replace("CT maxillofacial", "Chest radiograph"))


def test_a_right_side_hit_needs_a_left_neighbour_that_fits_the_term_outside_the_model(checker):
    text = ("FINDINGS: No acute fracture. There are old fractures of the anterior RIGHT eighth rib.\n\n"
            "IMPRESSION: Old rib fractures.")
    assert ("real_word", "eighth") not in rules(checker, text, CT_CHEST)
    # a spelled ordinal counts the rib: no misheard "right" in the radiograph model's own domain either (H8F)
    assert ("real_word", "eighth") not in rules(checker, text, DX_CHEST)
    ivc = "FINDINGS: No acute fracture. Inferior vena cava filter in place.\n\nIMPRESSION: IVC filter."
    assert ("real_word", "Inferior") not in rules(checker, ivc, CT_CHEST)
    mid = "FINDINGS: No acute fracture. Filter in the inferior vena cava.\n\nIMPRESSION: IVC filter."
    assert ("real_word", "inferior") not in rules(checker, mid, CT_CHEST)  # opposites are no sound-alike slips
    slip = "FINDINGS: No enlarged axillary, mediastinal, or hilarious lymph nodes.\n\nIMPRESSION: Normal."
    assert ("real_word", "hilarious") in rules(checker, slip, CT_CHEST)


def test_a_strong_left_context_is_still_a_confusion_in_a_ct(checker):
    text = "FINDINGS: Small left pleural infusion.\n\nIMPRESSION: Effusion."
    assert ("real_word", "infusion") in rules(checker, text, CT_CHEST)


def test_eponyms_leadless_devices_and_spelling_variants_are_words(checker):
    text = ("FINDINGS: A leadless pacemaker in the right ventricle. A Killian-Jamieson diverticulum. "
            "Heterogenous anterior mediastinal mass, unchanged.\n\nIMPRESSION: Diverticulum.")
    assert not [r for r in rules(checker, text, CT_CHEST) if r[0] in ("non_word", "real_word")]
    typo = "FINDINGS: A Killian-Jamieson divertikulum.\n\nIMPRESSION: Diverticulum."
    assert ("non_word", "divertikulum") in rules(checker, typo, CT_CHEST)


def test_subcentimeter_lymph_nodes_do_not_contradict_no_adenopathy(checker):
    text = ("FINDINGS:\nMEDIASTINUM: No mediastinal lymphadenopathy. Mediastinal lymph nodes unchanged, all "
            "subcentimeter.\n\nIMPRESSION: No acute abnormality.")
    assert not [r for r in rules(checker, text, CT_CHEST) if r[0].startswith("polarity")]
    enlarged = ("FINDINGS:\nMEDIASTINUM: No mediastinal lymphadenopathy. Enlarged mediastinal lymph nodes measuring "
                "2 cm.\n\nIMPRESSION: Adenopathy.")
    assert [r for r in rules(checker, enlarged, CT_CHEST) if r[0] == "polarity_within"]


def test_a_no_change_statement_under_an_organ_heading_speaks_of_that_organ(checker):
    text = ("FINDINGS:\nLUNGS: There is decreased groundglass opacity in the right lower lobe.\n"
            "LYMPH NODES: No interval change since the CT of 5/2/2023.\n")
    assert not [r for r in rules(checker, text, CT_CHEST) if r[0] == "interval_global"]
    whole = "FINDINGS: There is decreased groundglass opacity in the right lower lobe.\n\nIMPRESSION: No interval change."
    assert [r for r in rules(checker, "COMPARISON: 5/2/2023.\n\n" + whole, CT_CHEST) if r[0] == "interval_global"]


def test_another_study_reported_separately_is_not_this_study(checker):
    text = ("FINDINGS:\nLUNGS: Clear.\nUPPER ABDOMEN: The abdominal MRI of the same day is reported separately.\n")
    assert not [r for r in rules(checker, text, CT_CHEST) if r[0] == "header_modality"]


def test_a_small_visceral_aneurysm_is_no_unit_error_but_a_small_aortic_one_is(checker):
    renal = "FINDINGS: Small right renal artery aneurysm with rim calcification, measuring 1.3 cm.\n\nIMPRESSION: Aneurysm."
    assert not [r for r in rules(checker, renal, CT_CHEST) if r[0] == "size_plausibility"]
    aortic = "FINDINGS: Abdominal aortic aneurysm measuring 4.5 mm.\n\nIMPRESSION: Aneurysm."
    assert [r for r in rules(checker, aortic, CT_CHEST) if r[0] == "size_plausibility"]


@pytest.mark.parametrize("text, header, word", [
    ("FINDINGS: There is a hyperintense mass in the right frontal lobe.\n\nIMPRESSION: Mass.", CT_HEAD, "hyperintense"),
    ("FINDINGS: Increased FLAIR signal in the periventricular white matter.\n\nIMPRESSION: Small vessel disease.",
     CT_HEAD, "FLAIR"),
    ("FINDINGS: A hypodense lesion in the right frontal lobe.\n\nIMPRESSION: Lesion.", MR_BRAIN, "hypodense"),
])
def test_the_other_cross_sectional_modality_s_signal_words_are_flagged(checker, text, header, word):
    assert ("header_modality", word) in rules(checker, text, header)


@pytest.mark.parametrize("text, header", [
    ("FINDINGS: A hypodense lesion in the right frontal lobe.\n\nIMPRESSION: Lesion.", CT_HEAD),
    ("FINDINGS: The mass is hyperintense on the prior MRI.\n\nIMPRESSION: Mass.", CT_HEAD),
    ("FINDINGS: Mild disc space narrowing at T1-T2.\n\nIMPRESSION: Degeneration.", CT_CHEST),
    ("FINDINGS: A hyperdense opacity in the right lower lobe.\n\nIMPRESSION: Opacity.", DX_CHEST),
])
def test_signal_words_of_the_study_itself_or_of_a_named_prior_are_not(checker, text, header):
    assert not [r for r in rules(checker, text, header) if r[0] == "header_modality"]


def test_this_study_named_after_a_preposition_is_this_study(checker):
    """'limited on this chest MRI' in a CT report names the study itself; 'on the prior MRI' names another."""
    this = "FINDINGS:\nBONES: Assessment of the thoracic spine is limited on this chest MRI.\n"
    assert ("header_modality", "MRI") in rules(checker, this, CT_CHEST)
    other = "FINDINGS:\nBONES: The thoracic spine was better seen on the prior chest MRI.\n"
    assert not [r for r in rules(checker, other, CT_CHEST) if r[0] == "header_modality"]


def test_a_chest_finding_in_a_limb_or_head_study_describes_another_body_part(checker):
    text = "FINDINGS: Joint effusion. Focal consolidation in the right lower lobe.\n\nIMPRESSION: Effusion."
    assert ("header_body_part", "lower lobe") in rules(checker, text, {"modality": "MR", "body_part": "ELBOW"})
    assert ("header_body_part", "lower lobe") in rules(checker, text, CT_HEAD)
    assert not [r for r in rules(checker, text, {"modality": "MR", "body_part": "SHOULDER"})
                if r[0] == "header_body_part"]  # a shoulder study shows the lung apex
    assert not [r for r in rules(checker, text, CT_CHEST) if r[0] == "header_body_part"]


def test_no_evidence_of_additional_lesions_denies_only_other_ones(checker):
    text = ("FINDINGS: There is an ill-defined mass in the subglottic region. There is no evidence of further "
            "masses in the oral or nasal cavity.\n\nIMPRESSION: Subglottic mass.")
    assert not [r for r in rules(checker, text, CT_CHEST) if r[0].startswith("polarity")]


def test_a_finding_referred_back_to_is_compared_where_it_is_described(checker):
    text = ("FINDINGS: There is a lobulated mass in the right kidney. This mass spans 9 cm from top to bottom. No "
            "masses or hydronephrosis in the left kidney.\n\nIMPRESSION: Right renal mass.")
    assert not [r for r in rules(checker, text, CT_CHEST) if r[0] == "polarity_within"]
    same_side = text.replace("in the right kidney", "in the left kidney").replace("Right renal", "Left renal")
    assert [r for r in rules(checker, same_side, CT_CHEST) if r[0] == "polarity_within"]


def test_a_last_paragraph_that_opens_another_study_is_no_impression(checker):
    """Teaching-file and multi-study text without headers: a last paragraph that names another study ("On MRI, ...",
    "The contrast CT of the abdomen shows ...") or opens with a heading of its own ("After 3 months of therapy:")
    goes on with the findings; MIMIC's fallback (the last paragraph is the impression) still holds otherwise."""
    from medmm.reports.sections import split_sections

    text = ("Ultrasound shows a 6 cm solid mass in the right renal fossa.\n\n"
            "On CT, the left kidney shows a 2 cm mass in its lower pole.")
    assert [s.name for s in split_sections(text)] == ["findings"]
    assert not [r for r in rules(checker, text, {"modality": "CT", "body_part": "ABDOMEN"})
                if r[0] in ("laterality_sections", "unsummarised_finding")]
    serial = ("- Large left adrenal mass (9.0 cm x 7.5 cm).\n\nAfter 3 months of therapy:\n"
              "- Smaller left adrenal mass (5.1 cm x 4.0 cm).")
    assert [s.name for s in split_sections(serial)] == ["findings"]
    assert not [r for r in rules(checker, serial, {"modality": "CT", "body_part": "ABDOMEN"})
                if r[0] == "measurement_sections"]
    region = ("The chest shows a large mass under the left axilla.\n\n"
              "The contrast CT of the pelvis shows an enlarged uterus.")
    assert [s.name for s in split_sections(region)] == ["findings"]
    for summary in ("Clear lungs.\n\nNormal chest.", "Small right effusion.\n\nNo acute findings on CT.",
                    "Small right effusion.\n\nRecommend CT."):
        assert [s.name for s in split_sections(summary)] == ["findings", "impression"]


def test_ct_anatomy_the_radiograph_model_never_saw_is_no_confusion(checker):
    """A medical word the packaged (radiograph) model never saw, whose right neighbour the model never saw after the
    term the left neighbour suggests, is CT/MR anatomy, not a slip ("temporal bone fracture" is no "temporal lobe
    fracture"); a side word alone does not say which paired structure follows ("left pectoral")."""
    head = ("FINDINGS: A fracture of the left temporal bone extends to the mastoid. Uptake in the left femoral "
            "head.\n\nIMPRESSION: Temporal bone fracture.")
    assert not [r for r in rules(checker, head, CT_HEAD) if r[0] == "real_word"]
    veins = "FINDINGS: Small left common iliac vein with prominent collateral vessels.\n\nIMPRESSION: Compression."
    assert not [r for r in rules(checker, veins, {"modality": "CT", "body_part": "ABDOMEN"}) if r[0] == "real_word"]
    chest = ("FINDINGS: Soft tissue thickening of the right pectoral and deltoid muscles.\n\n"
             "IMPRESSION: Muscle thickening.")
    assert not [r for r in rules(checker, chest, CT_CHEST) if r[0] == "real_word"]
    slip = "FINDINGS: Small left pleural infusion.\n\nIMPRESSION: Effusion."  # the left context still decides
    assert ("real_word", "infusion") in rules(checker, slip, CT_CHEST)


def test_the_mass_refers_back_to_the_mass_described(checker):
    """'the mass' (a bare definite article) refers back like 'this mass': compared through the sided mass it refers
    to, not with a denial of masses on the other side."""
    text = ("FINDINGS: A lobulated mass arises from the left kidney. The right kidney is unremarkable with no masses. "
            "Calcifications are seen within the mass.\n\nIMPRESSION: Left renal mass.")
    assert not [r for r in rules(checker, text, {"modality": "CT", "body_part": "ABDOMEN"})
                if r[0] == "polarity_within"]
    same = text.replace("from the left kidney", "from the right kidney").replace("Left renal", "Right renal")
    assert [r for r in rules(checker, same, {"modality": "CT", "body_part": "ABDOMEN"}) if r[0] == "polarity_within"]


def test_the_lateral_mass_of_a_vertebra_is_anatomy_not_a_mass(checker):
    """'no displacement of the left lateral mass' denies no mass, and an impression without 'mass' omits none."""
    text = ("FINDINGS: C1 ring fractures, no displacement of the left lateral mass, moderate displacement of "
            "the right lateral mass.\n\nIMPRESSION: Atlas fracture.")
    assert not [r for r in rules(checker, text, CT_HEAD) if r[0] in ("within_sentence", "unsummarised_finding")]
    real = "FINDINGS: No mass or adenopathy; a 3 cm mass in the right neck.\n\nIMPRESSION: Mass."  # still a mass
    assert [r for r in rules(checker, real, CT_HEAD) if r[0] == "within_sentence"]


def test_directions_toward_eponyms_and_short_forms_of_teaching_text_are_words(checker):
    """'craniocaudad' (toward: the '-ad' form of 'craniocaudal'), 'Probst bundles', 'mult' (multiple); a misspelling
    next to them is still one."""
    text = ("FINDINGS: A mass 2 cm craniocaudad. Probst bundles are present. Mult small foci of edema. Small "
            "sagital cleft.\n\nIMPRESSION: Mass.")
    flagged = rules(checker, text, MR_BRAIN)
    assert not [r for r in flagged if r[0] == "non_word" and r[1] in ("craniocaudad", "Probst", "Mult")]
    assert ("non_word", "sagital") in flagged


def test_a_reference_back_by_another_type_is_compared_through_its_antecedent(checker):
    """'this mass lesion' restates the mass described before; a denial of lesions somewhere else (its own type) does
    not contradict it, as it would not contradict the mass stated directly."""
    text = ("FINDINGS: An enhancing mass fills the supraglottic larynx. No lesions are seen in the "
            "mainstem bronchi. The tube ends just below this mass lesion.\n\nIMPRESSION: Laryngeal mass.")
    assert not [r for r in rules(checker, text, CT_CHEST) if r[0] == "polarity_within"]
    direct = text.replace("this mass lesion", "a lesion")
    assert [r for r in rules(checker, direct, CT_CHEST) if r[0] == "polarity_within"]


def test_without_a_header_a_body_sentence_naming_the_study_names_the_modality(checker):
    """No header and no examination line: the first body sentence that names a study (and no other study) says
    which; a sentence naming a prior does not."""
    text = ("Axial CT images of the head demonstrate a fracture through the left temporal bone extending to the "
            "mastoid. Uptake in the left femoral head.")
    assert not [r for r in rules(checker, text) if r[0] == "real_word"]
    prior = "Compared with the prior CT, there are large collateral veins along the chest wall."
    assert [r for r in rules(checker, prior) if r[0] == "real_word"]  # read as radiograph text, as before
    named = "Axial CT images of the chest demonstrate large collateral veins along the chest wall."
    assert not [r for r in rules(checker, named) if r[0] == "real_word"]


# ------------------------------------------------------------------ session 7 (H7F): families of CT/MR false alarms
# found on made-up text in the style of the MedPix teaching findings and captions (tune split); each clean case must
# raise no flag of the rule and each family keeps a slip that is still flagged.
def test_british_spellings_greek_plurals_and_like_adjectives_are_words(checker):
    text = ("FINDINGS: Two tumours in the liver. Haematoma of the thigh with surrounding oedema. Normal calibre of the "
            "aorta, characterised as ectatic. Cranial synostoses. Multiple cystlike lesions.\n\nIMPRESSION: Tumours.")
    assert not [r for r in rules(checker, text, CT_CHEST) if r[0] == "non_word"]
    slips = "FINDINGS: The posteriour wall of the tumuor.\n\nIMPRESSION: Tumor."
    assert {("non_word", "posteriour"), ("non_word", "tumuor")} <= set(rules(checker, slips, CT_CHEST))


def test_a_capitalised_possessive_or_eponym_before_its_noun_is_a_name(checker):
    text = ("FINDINGS: Sequelae of Grisel's syndrome. Old Preiser disease of the scaphoid.\n\n"
            "IMPRESSION: Chronic changes.")
    assert not [r for r in rules(checker, text, CT_HEAD) if r[0] == "non_word"]
    slips = "FINDINGS: Diveriticular disease. Mild diveriticular disease.\n\nIMPRESSION: Diverticulosis."
    assert [r for r in rules(checker, slips, CT_CHEST) if r[0] == "non_word"] == [
        ("non_word", "Diveriticular"), ("non_word", "diveriticular")]


def test_standard_ct_terms_missing_from_the_lists_are_words(checker):
    text = ("FINDINGS: Peripheral ground-glass opacities, typical appearance of Covid pneumonia. Comminution of the "
            "fracture fragments. Situs inversus.\n\nIMPRESSION: Pneumonia.")
    assert not [r for r in rules(checker, text, CT_CHEST) if r[0] == "non_word"]


@pytest.mark.parametrize("sentence, header", [
    ("Status post CT-guided biopsy of the right adrenal gland.", MR_BRAIN),
    ("Changes after ultrasound guided drainage of the collection.", MR_BRAIN),
    ("The cystic lesion described at ultrasound is a simple cyst.", MR_BRAIN),
    ("The mass was biopsied under ultrasound.", CT_CHEST),
    ("Indeterminate hepatic lesion. Nonemergent MRI abdomen for characterization.", CT_CHEST),
    ("Ultrasound to evaluate the thyroid nodule.", CT_CHEST),
    ("Refer to the MRI report for details.", CT_CHEST),
    ("MRI performed 6 days later showed subacute infarcts.", CT_HEAD),
])
def test_a_guiding_proposed_or_later_study_is_another_study(checker, sentence, header):
    text = f"FINDINGS: {sentence}\n\nIMPRESSION: Stable."
    assert not [r for r in rules(checker, text, header) if r[0] == "header_modality"]


def test_this_study_named_as_another_modality_is_still_flagged(checker):
    text = "FINDINGS: CT of the brain shows no hemorrhage.\n\nIMPRESSION: Normal."
    assert ("header_modality", "CT") in rules(checker, text, MR_BRAIN)
    assert ("header_modality", "MRI") in rules(checker, text.replace("CT of", "MRI of"), CT_HEAD)


def test_a_part_noun_after_a_site_word_is_no_confusion_outside_the_model(checker):
    """'frontal bone' is no 'frontal lobe' misheard in a head CT; the radiograph model's own domain keeps the rule."""
    text = ("FINDINGS: Lytic lesion in the left frontal bone. Hypodensity at the upper dome of the liver.\n\n"
            "IMPRESSION: Lesions.")
    assert not [r for r in rules(checker, text, CT_HEAD) if r[0] == "real_word"]
    assert ("real_word", "bone") in rules(checker, text, DX_CHEST)


def test_a_right_neighbour_alone_is_too_little_for_ct_mr_anatomy(checker):
    text = "FINDINGS: Small pineal cyst.\n\nIMPRESSION: Incidental cyst."
    assert not [r for r in rules(checker, text, MR_BRAIN) if r[0] == "real_word"]
    assert ("real_word", "pineal") in rules(checker, text, DX_CHEST)
    slip = "FINDINGS: Small medicinal lymph nodes.\n\nIMPRESSION: No adenopathy."
    assert ("real_word", "medicinal") in rules(checker, slip, CT_CHEST)


def test_mirrored_anatomy_has_its_one_sided_structures_on_the_other_side(checker):
    text = ("FINDINGS: Situs inversus totalis. A left-sided minor fissure. Small nodule in the left middle lobe.\n\n"
            "IMPRESSION: Situs inversus.")
    assert not [r for r in rules(checker, text, CT_CHEST) if r[0].startswith("nonexistent")]
    slip = text.replace("Situs inversus totalis. ", "").replace("IMPRESSION: Situs inversus.", "IMPRESSION: Nodule.")
    found = {r[0] for r in rules(checker, slip, CT_CHEST)}
    assert {"nonexistent_fissure", "nonexistent_lobe"} <= found


def test_a_narrowed_lumen_is_no_too_small_structure(checker):
    text = "FINDINGS: The subglottic trachea is narrowed to 5 mm.\n\nIMPRESSION: Tracheal stenosis."
    assert not [r for r in rules(checker, text, CT_CHEST) if r[0] == "size_plausibility"]
    slip = "FINDINGS: The trachea measures 5 mm in diameter.\n\nIMPRESSION: Normal trachea."
    assert [r for r in rules(checker, slip, CT_CHEST) if r[0] == "size_plausibility"]


def test_a_nodule_of_another_organ_may_pass_the_lung_s_three_centimetres(checker):
    text = "FINDINGS: Right adrenal nodule measuring 3.2 cm, indeterminate.\n\nIMPRESSION: Adrenal nodule."
    assert not [r for r in rules(checker, text, CT_CHEST) if r[0] == "size_plausibility"]
    lung = "FINDINGS: Right lower lobe nodule measuring 3.4 cm.\n\nIMPRESSION: Nodule."
    assert [r for r in rules(checker, lung, CT_CHEST) if r[0] == "size_plausibility"]
    unit = "FINDINGS: Right adrenal nodule measuring 32 cm.\n\nIMPRESSION: Adrenal nodule."
    assert [r for r in rules(checker, unit, CT_CHEST) if r[0] == "size_plausibility"]


def size_flags(checker, text: str, header: dict | None = CT_CHEST) -> list[str]:
    return [f.text for f in checker.check(text, header).flags if f.rule == "size_plausibility"]


def test_an_organ_before_a_finding_noun_or_a_part_only_says_where_the_measured_thing_is(checker):
    """'3 mm left kidney stone' measures the stone, 'the thyroid isthmus measures 3 mm' the isthmus; an organ after a
    preposition or as a sub-heading is where the measured thing lies (H8F, made-up CT text)."""
    for text in ("FINDINGS: There is a 3 mm nonobstructing left kidney stone.",
                 "FINDINGS: Right kidney stone measuring 5 mm.",
                 "FINDINGS: 4 mm aortic arch ulcer.",
                 "FINDINGS: 6 mm pulmonary artery filling defect in the right lower lobe.",
                 "FINDINGS: The thyroid isthmus measures 3 mm.",
                 "FINDINGS: Bilateral renal cysts, the largest 3 cm in the right kidney.",
                 "FINDINGS: Normal.\nKIDNEYS: 4 mm stone in the lower pole of the right kidney."):
        assert not size_flags(checker, text + "\n\nIMPRESSION: Incidental findings."), text
    for slip in ("FINDINGS: The right kidney measures 12 mm.", "FINDINGS: The thyroid measures 3 mm.",
                 "FINDINGS: Multiple kidney stones. The largest kidney measures 2 mm."):
        assert size_flags(checker, slip + "\n\nIMPRESSION: Normal."), slip


def test_an_organ_called_small_or_enlarged_has_bounds_of_its_own(checker):
    for text in ("FINDINGS: 1.2 cm accessory spleen near the splenic hilum.",
                 "FINDINGS: The atrophic left kidney measures 3.5 cm.",
                 "FINDINGS: Enlarged polycystic kidneys, the right kidney measuring 22 cm.",
                 "FINDINGS: Massive splenomegaly, the spleen measuring 28 cm.",
                 "FINDINGS: Multinodular thyroid measuring 13 cm craniocaudally."):
        assert not size_flags(checker, text + "\n\nIMPRESSION: See findings."), text
    for slip in ("FINDINGS: The enlarged spleen measures 80 cm.", "FINDINGS: The left kidney measures 35 cm.",
                 "FINDINGS: The spleen measures 13 mm."):
        assert size_flags(checker, slip + "\n\nIMPRESSION: See findings."), slip


def test_a_mass_or_nodule_is_sized_by_its_site(checker):
    """A few-mm mass where small masses are described (the internal auditory canal, the pituitary, a breast); an organ's
    nodule past the lung's 3 cm; a segmental pulmonary artery of a few mm. The lung's bounds stay, also when another
    clause names such a site."""
    for text, header in (("FINDINGS: A 4 mm enhancing mass in the left internal auditory canal.", MR_BRAIN),
                         ("FINDINGS: 3 mm enhancing mass within the pituitary gland.", MR_BRAIN),
                         ("FINDINGS: 7 mm mass in the upper outer left breast.", CT_CHEST),
                         ("FINDINGS: 3.2 cm nodule in the left lobe of the thyroid.", CT_CHEST),
                         ("FINDINGS: Filling defect in a segmental pulmonary artery measuring 4 mm.", CT_CHEST)):
        assert not size_flags(checker, text + "\n\nIMPRESSION: See findings.", header), text
    for slip in ("FINDINGS: A 3.6 mm mass in the right upper lobe.",
                 "FINDINGS: A 3.5 x 3.2 mm mass arising from the left adrenal gland.",
                 "FINDINGS: 45 mm nodule in the right upper lobe, and a 1 cm left adrenal nodule.",
                 "FINDINGS: The main pulmonary artery measures 5 mm."):
        assert size_flags(checker, slip + "\n\nIMPRESSION: See findings."), slip


def test_a_spelled_ordinal_counts_a_structure_and_is_no_misheard_word(checker):
    text = "FINDINGS: Healed fractures of the right seventh and eighth ribs. Old fracture of the eighth rib.\n\nIMPRESSION: Old fractures."
    for header in (CT_CHEST, DX_CHEST, None):
        assert not [r for r in rules(checker, text, header) if r[0] == "real_word"]
    slip = "FINDINGS: Small left pleural infusion.\n\nIMPRESSION: Effusion."
    assert ("real_word", "infusion") in rules(checker, slip, DX_CHEST)


def test_without_a_header_cross_sectional_or_non_chest_findings_are_read_outside_the_radiograph_model(checker):
    """No header and no study named: the findings' words tell CT/MR or non-chest text ("(3:45)", "hypodense", "ilium",
    a LYMPH NODES sub-heading) from the chest radiograph text the packaged model was built from."""
    plain = "FINDINGS: Large collateral veins along the chest wall."
    assert ("real_word", "collateral") in rules(checker, plain)  # nothing says it is not radiograph text
    for text in (plain.replace("wall.", "wall (3:45)."), plain + " Hypodense lesion in the liver.",
                 "LYMPH NODES: No enlarged nodes. Large collateral veins along the chest wall.",
                 "FINDINGS: Exostosis arising from the upper left ilium."):
        assert not [r for r in rules(checker, text) if r[0] == "real_word"], text
    slip = "FINDINGS: Small left pleural infusion. Hypodense lesion in the liver.\n\nIMPRESSION: Effusion."
    assert ("real_word", "infusion") in rules(checker, slip)  # a strong left context is still a confusion


def test_another_modality_s_word_qualified_by_this_modality_s_sequence_is_loose_wording(checker):
    text = "FINDINGS: There are scant areas of T1 and T2 hypodensity, likely calcification.\n\nIMPRESSION: Mass."
    assert not [r for r in rules(checker, text, MR_BRAIN) if r[0] == "header_modality"]
    slip = "FINDINGS: A hypodense lesion in the left frontal lobe.\n\nIMPRESSION: Lesion."
    assert ("header_modality", "hypodense") in rules(checker, slip, MR_BRAIN)
    ct = "FINDINGS: A T2 hyperintense lesion in the left frontal lobe.\n\nIMPRESSION: Lesion."
    assert ("header_modality", "hyperintense") in rules(checker, ct, CT_HEAD)


def test_a_grade_word_in_a_name_or_an_organ_s_own_size_is_no_finding_s_grade(checker):
    """'small bowel', 'small vessel disease', 'small airways' are names, not grades; 'the left kidney is small,
    measuring 8 cm' grades the organ (small for a kidney), not a finding (H8F, made-up CT/MR text)."""
    grade_rules = {"severity_measured", "severity_measure", "severity_clash", "size_plausibility"}
    for text in ("FINDINGS: Dilated small bowel loops measuring up to 5.2 cm.",
                 "FINDINGS: Small bowel dilated to 5 cm.",
                 "FINDINGS: Large bowel wall thickening measuring 5 mm.",
                 "FINDINGS: Massive small bowel distension.",
                 "FINDINGS: Marked small vessel ischemic disease.",
                 "FINDINGS: Severe small airways disease.",
                 "FINDINGS: The left kidney is small, measuring 8 cm.",
                 "FINDINGS: Small right kidney measuring 7.5 cm with cortical thinning.",
                 "FINDINGS: Small uterus measuring 5.5 cm."):
        assert not [r for r in rules(checker, text + "\n\nIMPRESSION: See findings.", CT_CHEST) if r[0] in grade_rules], text
    for slip, rule in (("FINDINGS: A small hepatic cyst measuring 6 cm.", "severity_measured"),
                       ("FINDINGS: Small cyst in the left kidney measuring 6 cm.", "severity_measured"),
                       ("FINDINGS: Small 6 cm mass.", "severity_measure"),
                       ("FINDINGS: Large bowel loop with a large nodule measuring 3 mm.", "severity_measured"),
                       ("FINDINGS: Small large left pleural effusion.", "severity_clash")):
        assert rule in {r[0] for r in rules(checker, slip + "\n\nIMPRESSION: See findings.", CT_CHEST)}, slip


def test_an_impression_summarising_a_mass_by_its_nature_or_organ_has_mentioned_it(checker):
    imp = "IMPRESSION: Left lower lobe atelectasis. {}"
    fnd = "FINDINGS: 3 cm mass in the left adrenal gland. Left lower lobe atelectasis.\n\n"
    for summary in ("Left adrenal adenoma.", "Findings concerning for metastatic disease."):
        assert "unsummarised_finding" not in {r[0] for r in rules(checker, fnd + imp.format(summary), CT_CHEST)}
    assert "unsummarised_finding" in {r[0] for r in rules(checker, fnd + imp.format(""), CT_CHEST)}
    lung = "FINDINGS: 3 cm mass in the right upper lobe. Left lower lobe atelectasis.\n\n" + imp.format("")
    assert "unsummarised_finding" in {r[0] for r in rules(checker, lung, CT_CHEST)}  # another lung finding named


def test_the_abdominal_aorta_has_its_own_calibre(checker):
    """An abdominal aortic aneurysm is 3 cm and more, ectasia from 2.5 cm: the thoracic aorta's 3.5 cm is not its bound."""
    for text in ("FINDINGS: The infrarenal abdominal aorta is aneurysmal, measuring 3.2 cm.",
                 "FINDINGS: Ectatic abdominal aorta measuring 2.7 cm."):
        assert "caliber_measured" not in {r[0] for r in rules(checker, text + "\n\nIMPRESSION: Aorta.", CT_CHEST)}
    for slip in ("FINDINGS: Aneurysmal abdominal aorta measuring 1.9 cm.",
                 "FINDINGS: Normal caliber abdominal aorta measuring 4.1 cm.",
                 "FINDINGS: The ascending aorta is dilated, measuring 3.2 cm."):
        assert "caliber_measured" in {r[0] for r in rules(checker, slip + "\n\nIMPRESSION: Aorta.", CT_CHEST)}, slip


def test_a_high_grade_of_a_finding_measured_in_millimetres_by_nature(checker):
    """A spine MR's 'large' disc extrusion measures a few mm; a lung nodule or an aneurysm called large does not."""
    grade_rules = {"severity_measured", "severity_size"}
    mr_spine = {"modality": "MR", "body_part": "LSPINE"}
    for text in ("FINDINGS: Large central disc extrusion measuring 6 mm, severely narrowing the canal.",
                 "FINDINGS: Large 5 mm left paracentral disc protrusion.",
                 "FINDINGS: Large osteophyte measuring 5 mm."):
        assert not [r for r in rules(checker, text + "\n\nIMPRESSION: Disc.", mr_spine) if r[0] in grade_rules], text
    for slip in ("FINDINGS: Large disc extrusion measuring 1 mm.", "FINDINGS: A large 3 mm nodule in the right lung.",
                 "FINDINGS: Large right posterior communicating artery aneurysm measuring 6 mm."):
        assert [r for r in rules(checker, slip + "\n\nIMPRESSION: See findings.", mr_spine) if r[0] in grade_rules], slip


def test_this_study_s_sequence_anywhere_in_the_sentence_makes_another_modality_s_word_loose_wording(checker):
    """Session 8: the sequence named at the sentence's start, the CT word at its end ("On the T2 weighted images,
    ... no hyperdense ..."); a CT word in an MR sentence that names no MR sequence is still flagged."""
    mr = MR_BRAIN
    loose = ("FINDINGS: On the T2 weighted sequence obtained today there is no hyperdense vascular lesion.\n\n"
             "IMPRESSION: No acute intracranial abnormality.")
    assert ("header_modality", "hyperdense") not in rules(checker, loose, mr)
    plain = ("FINDINGS: There is a hyperdense lesion in the left basal ganglia.\n\n"
             "IMPRESSION: Left basal ganglia lesion.")
    assert ("header_modality", "hyperdense") in rules(checker, plain, mr)


def test_a_modality_named_as_a_criterion_or_purpose_is_another_study(checker):
    """'meeting criteria for sonographic evaluation', 'suitable for ultrasound correlation': a study to come, not this
    one; a chest CT whose findings speak in another modality's words of this study is still flagged."""
    for sentence in ("No thyroid nodule meeting size criteria for sonographic evaluation.",
                     "The adrenal nodule is too small for MRI characterization."):
        text = f"FINDINGS: {sentence} No pleural effusion.\n\nIMPRESSION: No acute findings."
        assert "header_modality" not in {r[0] for r in rules(checker, text, CT_CHEST)}, sentence
    slip = "FINDINGS: Sonographic images show no pleural effusion.\n\nIMPRESSION: No acute findings."
    assert "header_modality" in {r[0] for r in rules(checker, slip, CT_CHEST)}


def test_a_hedge_beside_a_word_says_nothing_of_what_the_word_could_be(checker):
    """'near the splenic dome, likely a cyst': 'likely' follows many a term in the radiograph model but is a hedge,
    no evidence that 'dome' stands for one; a hedge on the left neither ('probably granola' has no 'probably
    granuloma')."""
    text = ("FINDINGS: Small hypoattenuating lesion near the splenic dome, likely a cyst. No pleural effusion.\n\n"
            "IMPRESSION: Likely splenic cyst.")
    assert ("real_word", "dome") not in rules(checker, text, CT_CHEST)
    slip = "FINDINGS: A calcified granola in the right lung.\n\nIMPRESSION: Granuloma."
    assert ("real_word", "granola") in rules(checker, slip, DX_CHEST)


def test_a_modality_named_further_on_after_for_is_this_study_s(checker):
    """'worrisome for malignancy based upon MRI criteria' in a report whose header says CT: the MRI is this study's
    (only a modality right after 'for' is a purpose), so the header's modality is still contradicted."""
    text = ("FINDINGS: The masses are not worrisome for malignancy based upon MRI criteria.\n\n"
            "IMPRESSION: Benign masses.")
    assert ("header_modality", "MRI") in rules(checker, text, CT_CHEST)
