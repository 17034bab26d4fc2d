"""Keyed pseudonyms for de-identification: one secret, one construction.

Every replacement value that must be consistent (UIDs across a study, a patient's date offset,
output file names, a patient's dummy ID) is ``HMAC-SHA256(key, purpose + ":" + value)`` — the same
construction as the review store's salted source hashes (``medmm.audit.store``: HMAC-SHA256 with
the store's salt as key).

Where the key comes from (issue 20, D2: the key was ``HMAC(constant, seed)``, so every five-digit seed
was tried from one input/output UID pair in under a second, and two homes with ``--seed 1`` agreed):

- no seed and no key file: a random key for this run only (pseudonyms cannot be repeated, or reversed);
- ``--seed`` and/or ``--key-file``: the secret is a **random key file** (32 bytes from ``secrets``,
  written as hex with mode 0600 in a 0700 folder the first time it is needed: ``MEDMM_DEID_KEY_FILE``
  or ``~/.medmm/deid.key``), stretched with scrypt (n=2^14, r=8) with the seed as salt. The seed only
  separates projects that share a key file; **the seed alone never determines a pseudonym**, and a key
  file readable by group or others is refused (as ssh does).

Whoever holds the key file (and the seed) can re-derive every pseudonym from an original value: keep
it like the store's salt, back it up with the data it keyed, and never ship it with the output.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from dataclasses import dataclass

from medmm.errors import InputError

KEY_CONTEXT = b"medmm-deid-v2"
MAX_DATE_SHIFT_DAYS = 3650
KEY_FILE_ENV = "MEDMM_DEID_KEY_FILE"
KEY_BYTES = 32
SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32, "maxmem": 64 * 2**20}


def default_key_file() -> str:
    """``MEDMM_DEID_KEY_FILE``, or ``~/.medmm/deid.key``."""
    return os.environ.get(KEY_FILE_ENV) or os.path.join(os.path.expanduser("~"), ".medmm", "deid.key")


def _read_key_file(path: str) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise InputError(f"{path}: the de-identification key file cannot be read ({exc.strerror})") from exc
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{path}: the de-identification key file is not a regular file")
        if st.st_mode & 0o077:
            raise InputError(f"{path}: the de-identification key file can be read by other users "
                             f"(mode {stat.S_IMODE(st.st_mode):o}); run `chmod 600 {path}` and check who copied it")
        raw = fh.read(4097)
    text = raw.strip()
    try:
        secret = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        secret = raw
    if len(secret) < KEY_BYTES or len(raw) > 4096:
        raise InputError(f"{path}: not a de-identification key file (it must hold at least {KEY_BYTES} random bytes, "
                         "64 hex digits); medmm writes one when none exists")
    return secret


def load_or_create_key_file(path: str | None = None) -> tuple[bytes, bool]:
    """The key file's secret, and whether it was created now (0600, in a 0700 folder; never overwritten)."""
    path = os.path.abspath(path or default_key_file())
    if not os.path.lexists(path):
        folder = os.path.dirname(path)
        if not os.path.isdir(folder):
            os.makedirs(folder, mode=0o700, exist_ok=True)
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except FileExistsError:  # another run created it first: use theirs
            return _read_key_file(path), False
        except OSError as exc:
            raise InputError(f"{path}: the de-identification key file cannot be created ({exc.strerror})") from exc
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(KEY_BYTES) + "\n")
        return _read_key_file(path), True
    return _read_key_file(path), False


def stretch(secret: bytes, salt: str) -> bytes:
    """scrypt(secret, salt): what a guessed seed or a stolen low-entropy secret costs to try."""
    return hashlib.scrypt(secret, salt=KEY_CONTEXT + b"\0" + salt.encode("utf-8"), **SCRYPT)


def keyed_hash(key: bytes, value: str) -> str:
    """HMAC-SHA256 of ``value`` under ``key``, hex (the review store's construction)."""
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class DeidKey:
    """The secret behind every pseudonym of one de-identification (never logged, never written)."""

    secret: bytes

    created_key_file: str | None = None  # the key file written for this key, if it was created now

    @classmethod
    def from_seed(cls, seed: str | int | None, key_file: str | None = None) -> "DeidKey":
        """No seed and no key file: a random key for this run. Otherwise the key file's secret (created at
        first use), stretched with the seed as salt: the seed alone never determines the key."""
        if seed is None and key_file is None:
            return cls(secrets.token_bytes(KEY_BYTES))
        path = os.path.abspath(key_file or default_key_file())
        secret, created = load_or_create_key_file(path)
        return cls(stretch(secret, "" if seed is None else str(seed)), created_key_file=path if created else None)

    @classmethod
    def from_secret(cls, secret: str | bytes, purpose: str = "") -> "DeidKey":
        """A key from a secret the caller already keeps (the app: the review store's salt), stretched."""
        raw = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
        return cls(stretch(raw, "secret:" + purpose))

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
