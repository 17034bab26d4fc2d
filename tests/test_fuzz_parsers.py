"""Property-based fuzzing (hypothesis) of every parser that reads text a person or a model wrote:
the report section splitter, the rule checker, the box codecs, the probe answer parsers and the
report-text scrubber. Properties: no exception, spans always inside the text (and equal to the text
they claim to cover), boxes inside the image, answers from the allowed set."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medmm.deid.text import find_phi, scrub_text
from medmm.imaging.volume import HeaderFacts
from medmm.probe.parse import LETTER_PARSERS, YESNO_PARSERS, letter_answer, parse_yes_no, yes_no_answer
from medmm.regions.codecs import CODECS, get_codec
from medmm.reports import check
from medmm.reports.checker import clean_text
from medmm.reports.sections import split_sections, split_sentences

FUZZ = settings(max_examples=int(os.environ.get("MEDMM_FUZZ_EXAMPLES", "300")), deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

FRAGMENTS = [
    "FINDINGS:", "IMPRESSION:", "IMPRESION:", "COMPARISON:", "CLINICAL HISTORY:", "TECHNIQUE:", "Findings:",
    ":", "::", "\n", "\r\n", "  ", ". ", "left", "right", "bilateral", "no", "No", "not", "without", "there is",
    "3 cm", "12 x 8 mm", "0.5cm", "mass", "nodule", "effusion", "pneumothorax", "Pneumothroax", "lung", "kidney",
    "unchanged", "new", "increased", "since", "prior", "female", "male", "uterus", "prostate", "Dr. Smith",
    "01/02/2020", "MRN: 1234567", "(555) 123-4567", "92-year-old", "\u00e9", "\u2013", "\u200b", "\x00", "\t",
    "[", "]", "{", "}", "\"", "'", "\\", "1.", "a)", "-", "*", "#", "FINDINGS: IMPRESSION:", "\ufeff",
]
report_text = st.one_of(
    st.text(max_size=400),
    st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=12), max_size=60).map(" ".join),
    st.lists(st.sampled_from(FRAGMENTS), max_size=80).map("".join),
)
headers = st.one_of(st.none(), st.builds(
    HeaderFacts,
    modality=st.sampled_from([None, "CT", "MR", "DX", "CR", "US", "XX"]),
    body_part=st.sampled_from([None, "CHEST", "ABDOMEN", "HEAD", "PELVIS", ""]),
    laterality=st.sampled_from([None, "L", "R", "B", "?"]),
    patient_sex=st.sampled_from([None, "F", "M", "O", "x"]),
))


@FUZZ
@given(report_text)
def test_section_splitter_spans_inside_the_text(text):
    sections = split_sections(text)
    for s in sections:
        assert 0 <= s.start <= s.end <= len(text)
        assert s.text == text[s.start:s.end]
        assert s.header_start is None or 0 <= s.header_start <= s.start
    starts = [s.start for s in sections]
    assert starts == sorted(starts)
    for sentence in split_sentences(text, sections):
        assert 0 <= sentence.start <= sentence.end <= len(text)


@FUZZ
@given(report_text, headers)
def test_rule_checker_never_raises_and_flags_point_into_the_text(text, header):
    result = check(text, header=header)
    checked = clean_text(text, [])  # flags point into the checked text (CRLF -> LF, NFC, markup removed)
    assert 0.0 <= result.score <= 1.0
    for flag in result.flags:
        assert 0 <= flag.start <= flag.end <= len(checked), flag
        assert flag.text == checked[flag.start:flag.end], flag


model_output = st.one_of(
    st.text(max_size=300),
    st.lists(st.sampled_from([
        "<ref>", "</ref>", "<box>", "</box>", "<|box_start|>", "<|box_end|>", "<|object_ref_start|>",
        "<|object_ref_end|>", "(", ")", "[", "]", "{", "}", ",", "\"bbox_2d\"", "\"label\"", ":", "```json", "```",
        "0", "1", "999", "1000", "-5", "1e309", "nan", "0.5", "12.25", "99999999999999999999", "lesion", "\n", " ",
    ]), max_size=60).map("".join),
)
sizes = st.tuples(st.integers(1, 4096), st.integers(1, 4096))


@FUZZ
@given(st.sampled_from(sorted(CODECS)), model_output, sizes)
def test_box_codecs_decode_anything_into_boxes_inside_the_image(name, text, size):
    decoded = get_codec(name).decode(text, size)
    assert decoded.rejected >= 0
    w, h = size
    for x1, y1, x2, y2 in decoded.boxes:
        assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h, (x1, y1, x2, y2, size)


@FUZZ
@given(st.one_of(st.none(), st.text(max_size=200)), st.sampled_from(["AB", "ABCD", "ABCDE"]))
def test_probe_answer_parsers_return_allowed_answers(text, letters):
    assert parse_yes_no(text) in ("yes", "no", "invalid")
    for parser in YESNO_PARSERS:
        assert yes_no_answer(text, parser) in ("yes", "no", "invalid")
    for parser in LETTER_PARSERS:
        assert letter_answer(text, parser, letters) in (None, *letters)


@FUZZ
@given(report_text)
def test_scrubber_spans_inside_the_text_and_ordered(text):
    spans = find_phi(text)
    for a, b in zip(spans, spans[1:]):
        assert a.end <= b.start
    assert all(0 <= s.start < s.end <= len(text) for s in spans)
    result = scrub_text(text)
    assert result.spans == tuple(spans)
    bounds = [0] + [v for sp in spans for v in (sp.start, sp.end)] + [len(text)]
    gaps = [text[bounds[k]:bounds[k + 1]] for k in range(0, len(bounds), 2)]
    pos = 0
    for gap in gaps:  # the text between PHI spans survives, in order
        found = result.text.find(gap, pos)
        assert found >= 0
        pos = found + len(gap)
