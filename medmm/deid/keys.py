"""Keyed pseudonyms for de-identification: one secret, one construction.

Every replacement value that must be consistent (UIDs across a study, a patient's date offset,
output file names, a patient's dummy ID) is ``HMAC-SHA256(key, purpose + ":" + value)`` — the same
construction as the review store's salted source hashes (``medmm.audit.store``: HMAC-SHA256 with
the store's salt as key). With a seed, the key is derived from it, so two runs with the same seed
give the same UIDs and offsets; without one, a random key lives only for the run. Whoever holds
the seed can re-derive every pseudonym from an original value: keep it like the store's salt.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

KEY_CONTEXT = b"medmm-deid-v1"
MAX_DATE_SHIFT_DAYS = 3650


def keyed_hash(key: bytes, value: str) -> str:
    """HMAC-SHA256 of ``value`` under ``key``, hex (the review store's construction)."""
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class DeidKey:
    """The secret behind every pseudonym of one de-identification (never logged, never written)."""

    secret: bytes

    @classmethod
    def from_seed(cls, seed: str | int | None) -> "DeidKey":
        if seed is None:
            return cls(secrets.token_bytes(32))
        return cls(hmac.new(KEY_CONTEXT, str(seed).encode("utf-8"), hashlib.sha256).digest())

    def __repr__(self) -> str:  # the secret must not reach a log through a repr
        return "DeidKey(<secret>)"

    def digest(self, purpose: str, value: str) -> str:
        return keyed_hash(self.secret, f"{purpose}:{value}")

    def uid(self, original: str) -> str:
        """A new UID for ``original``: ``2.25.`` + a 128-bit integer (PS3.5 B.2), the same for the same key."""
        return "2.25." + str(int(self.digest("uid", original.strip().rstrip("\0"))[:32], 16))

    def day_offset(self, patient: str) -> int:
        """The patient's date shift in days: between 1 and MAX_DATE_SHIFT_DAYS days back."""
        return -(1 + int(self.digest("date-offset", patient)[:12], 16) % MAX_DATE_SHIFT_DAYS)

    def name(self, purpose: str, value: str, n: int = 16) -> str:
        """A short pseudonym (hex) for a file name or a dummy identifier."""
        return self.digest(purpose, value)[:n]
