"""Users, roles and password hashes for the review app (a YAML file; no plaintext passwords).

Hashes are scrypt (``hashlib.scrypt``, n=2**14, r=8, p=1) with a random 16-byte salt per user;
verification is constant-time. Roles: ``reviewer`` (reviews flags) and ``admin`` (also runs
checks from the app and exports).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any

import yaml

from medmm.errors import ConfigError, InputError

ROLES = ("reviewer", "admin")
N, R, P = 2**14, 8, 1


def hash_password(password: str, salt: bytes | None = None) -> dict[str, Any]:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=N, r=R, p=P, dklen=32)
    return {"salt": salt.hex(), "hash": digest.hex(), "n": N, "r": R, "p": P}


def verify_password(password: str, record: dict[str, Any]) -> bool:
    try:
        digest = hashlib.scrypt(password.encode("utf-8"), salt=bytes.fromhex(record["salt"]), n=int(record["n"]),
                                r=int(record["r"]), p=int(record["p"]), dklen=32)
    except (KeyError, ValueError, TypeError):
        return False
    return hmac.compare_digest(digest.hex(), str(record.get("hash", "")))


def load_users(path: str) -> dict[str, dict[str, Any]]:
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    users = data.get("users", {})
    if not isinstance(users, dict):
        raise ConfigError(f"{path}: 'users' must be a mapping of name -> record")
    for name, rec in users.items():
        if not isinstance(rec, dict) or rec.get("role") not in ROLES or "hash" not in rec:
            raise ConfigError(f"{path}: user {name!r} needs a role ({', '.join(ROLES)}) and a password hash")
        if "password" in rec:
            raise ConfigError(f"{path}: user {name!r} has a plaintext 'password'; use `medmm users add`")
    return users


def add_user(path: str, name: str, role: str, password: str) -> None:
    if role not in ROLES:
        raise InputError(f"role {role!r}: use one of {', '.join(ROLES)}")
    if not name or not name.replace("_", "").replace("-", "").replace(".", "").isalnum():
        raise InputError(f"user name {name!r}: letters, digits, '.', '-', '_' only")
    if len(password) < 8:
        raise InputError("passwords need at least 8 characters")
    users = load_users(path)
    users[name] = {"role": role, **hash_password(password)}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        yaml.safe_dump({"users": users}, fh, sort_keys=True)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def authenticate(users: dict[str, dict[str, Any]], name: str, password: str) -> str | None:
    """The user's role when the password is right, else None (same work either way)."""
    rec = users.get(name)
    ok = verify_password(password, rec or {"salt": "00" * 16, "hash": "", "n": N, "r": R, "p": P})
    return rec["role"] if rec is not None and ok else None


@dataclass
class Session:
    user: str
    role: str
    last_seen: float

    def expired(self, timeout_minutes: float, now: float | None = None) -> bool:
        return ((now or time.time()) - self.last_seen) > timeout_minutes * 60

    def touch(self, now: float | None = None) -> None:
        self.last_seen = now or time.time()


@dataclass(frozen=True)
class AppConfig:
    db: str = "demo-out/audit.sqlite"
    users_file: str = "demo-out/users.yaml"
    session_timeout_minutes: float = 30.0
    checker: str = "rules"
    model: str | None = None

    @classmethod
    def load(cls, path: str | None) -> "AppConfig":
        if not path:
            return cls()
        if not os.path.isfile(path):
            raise ConfigError(f"{path}: app config not found")
        with open(path, encoding="utf-8") as fh:
            raw = yaml.safe_load(fh) or {}
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"{path}: unknown key(s) {unknown}; allowed: {sorted(known)}")
        base = os.path.dirname(os.path.abspath(path))
        for key in ("db", "users_file"):
            if key in raw and raw[key] and not os.path.isabs(raw[key]):
                raw[key] = os.path.normpath(os.path.join(base, raw[key]))
        return cls(**raw)
