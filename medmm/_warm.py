"""Imported by the forkserver (medmm/_pool.py) before it forks workers: builds the caches every
report-checking worker needs (the spelling vocabulary takes ~0.3 s to load), once, so that
forked workers inherit them warm instead of each building its own."""

from medmm.reports.checker import _known_words

_known_words()
