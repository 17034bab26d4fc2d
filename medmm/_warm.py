"""Warm-up for report-checking workers, for callers that check reports (the audit runner passes
``"medmm._warm"`` in ``pool_context(preload=...)``; nothing else does, so a header scan or a
synthesis pool never loads the report checker).

Imported by the forkserver (medmm/_pool.py) before it forks workers: one check through the public
API builds the caches every report check needs (the spelling vocabulary takes ~0.3 s to load),
once, so that forked workers inherit them warm instead of each building its own."""

from medmm.reports import check

check("FINDINGS: No acute abnormality.\n\nIMPRESSION: Normal study.")
# A rare English word ("granola") makes the dictation-error rule build its candidate index (about 0.08 s), which
# every audit worker otherwise built again on its first study with such a word (issue 19, measured per worker).
check("FINDINGS: The granola is unremarkable.")
