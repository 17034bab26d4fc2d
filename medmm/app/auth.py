"""Users, roles, password hashes, login throttling and sessions for the review app.

Users live in a YAML file (mode 0600) holding scrypt hashes, never plaintext. Hashes are scrypt
(``hashlib.scrypt``, n=2**17, r=8, p=1: about 128 MiB and a few hundred ms per attempt) with a
random 16-byte salt per user; verification is constant-time; a hash made with a lower cost is
re-hashed on the next successful login. Passwords are 12 to 256 characters (the upper bound
keeps one attempt's cost bounded) and must not be one repeated character nor the user name.
At most :data:`MAX_CONCURRENT_HASHES` hashes run at once (memory).

Login attempts are throttled per user and per client (:class:`Throttle`): a few free failures,
then an exponential back-off, capped at a 15-minute lock-out. Attempts for one user name are
serialized and each is counted as a failure *before* its hash is checked (cleared on success), so
parallel attempts cannot all pass the back-off check at once (issue 20 N8). The app keeps the
counters in the review store (:class:`medmm.app.sessions.StoreThrottle`); an administrator lifts a
lock-out with ``medmm users unlock NAME``. Roles and what each may do are in
:data:`PERMISSIONS` (checked server-side by the app for every action).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import yaml

from medmm.errors import ConfigError, InputError

ROLES = ("reviewer", "admin")
N, R, P = 2**17, 8, 1
MIN_N = 2**17  # hashes below this cost are re-hashed on login
MIN_PASSWORD, MAX_PASSWORD = 12, 256
MAX_CONCURRENT_HASHES = 2
_HASH_SLOTS = threading.BoundedSemaphore(MAX_CONCURRENT_HASHES)

# What each role may do in the app (the app checks `allowed(role, action)` before every action).
PERMISSIONS: dict[str, frozenset[str]] = {
    "view": frozenset(ROLES),             # worklist, study pages, images, review history
    "review": frozenset(ROLES),           # save flag decisions and study verdicts
    "check_text": frozenset(ROLES),       # Check now on pasted report text (nothing stored)
    "export_redacted": frozenset(ROLES),  # CSV without report text, explanations, reviewer names
    "check_upload": frozenset({"admin"}),  # Check now with an uploaded image / zip (files on the server)
    "save_checked": frozenset({"admin"}),  # add a checked study to the store
    "export_full": frozenset({"admin"}),   # CSV with report text, explanations and reviewer names
}


def allowed(role: str | None, action: str) -> bool:
    """Whether ``role`` may perform ``action`` (unknown actions: nobody)."""
    return role is not None and role in PERMISSIONS.get(action, frozenset())


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    with _HASH_SLOTS:
        return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=32,
                              maxmem=128 * r * n + 16 * 1024 * 1024)


def check_password_policy(password: str, name: str = "") -> None:
    """Raise :class:`InputError` saying what is wrong with ``password``."""
    if len(password) < MIN_PASSWORD:
        raise InputError(f"passwords need at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InputError(f"passwords have at most {MAX_PASSWORD} characters")
    if len(set(password)) == 1:
        raise InputError("a password of one repeated character is refused")
    if name and password.lower() in (name.lower(), name.lower()[::-1]):
        raise InputError("the password must not be the user name")


def hash_password(password: str, salt: bytes | None = None) -> dict[str, Any]:
    salt = salt or secrets.token_bytes(16)
    digest = _scrypt(password, salt, N, R, P)
    return {"salt": salt.hex(), "hash": digest.hex(), "n": N, "r": R, "p": P}


def verify_password(password: str, record: dict[str, Any]) -> bool:
    if len(password) > MAX_PASSWORD:
        return False
    if not record.get("salt"):  # a sign-on-only user (no password): the same work as a wrong password
        _scrypt(password, b"\0" * 16, N, R, P)
        return False
    try:
        n, r, p = int(record["n"]), int(record["r"]), int(record["p"])
        if n > 2**20 or r > 32 or p > 16:  # a doctored users file must not exhaust the server
            return False
        digest = _scrypt(password, bytes.fromhex(record["salt"]), n, r, p)
    except (KeyError, ValueError, TypeError):
        return False
    return hmac.compare_digest(digest.hex(), str(record.get("hash", "")))


def needs_rehash(record: dict[str, Any]) -> bool:
    try:
        return int(record["n"]) < MIN_N or int(record["r"]) < R or int(record["p"]) < P
    except (KeyError, ValueError, TypeError):
        return True


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


_USERS_LOCK = threading.Lock()


def _write_users(path: str, users: dict[str, dict[str, Any]]) -> None:
    from medmm.runs import write_atomic  # the one atomic writer: 0600 from creation, never through a planted link

    write_atomic(path, yaml.safe_dump({"users": users}, sort_keys=True), mode=0o600)


def add_user(path: str, name: str, role: str, password: str | None) -> None:
    """Add or update a user; ``password`` None: a sign-on-only user (``sso_header`` mode), who cannot
    log in with a password."""
    if role not in ROLES:
        raise InputError(f"role {role!r}: use one of {', '.join(ROLES)}")
    if not name or not name.replace("_", "").replace("-", "").replace(".", "").replace("@", "").isalnum():
        raise InputError(f"user name {name!r}: letters, digits, '.', '-', '_', '@' only")
    if password is None:
        record: dict[str, Any] = {"hash": "", "sso": True}
    else:
        check_password_policy(password, name)
        record = hash_password(password)
    with _USERS_LOCK:
        users = load_users(path)
        users[name] = {"role": role, **record}
        _write_users(path, users)


def remove_user(path: str, name: str) -> bool:
    """Remove ``name``; live app sessions of that user end at their next rerun. False if absent."""
    with _USERS_LOCK:
        users = load_users(path)
        if users.pop(name, None) is None:
            return False
        _write_users(path, users)
        return True


def authenticate(users: dict[str, dict[str, Any]], name: str, password: str) -> str | None:
    """The user's role when the password is right, else None (same work either way)."""
    rec = users.get(name)
    ok = verify_password(password, rec or {"salt": "00" * 16, "hash": "", "n": N, "r": R, "p": P})
    return rec["role"] if rec is not None and ok else None


# ---------------------------------------------------------------- throttling
@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0


@dataclass
class Throttle:
    """Failed-login back-off per key ("user:NAME", "client:ADDRESS"), in memory, thread-safe.

    After ``free`` failures each further failure doubles the wait (1 s, 2 s, 4 s ...) up to
    ``max_wait`` seconds (the lock-out); a success clears the key. Clients get more free failures
    than users (several people may share a workstation or a proxy address).
    """

    free_user: int = 5
    free_client: int = 20
    max_wait: float = 900.0
    forget_after: float = 3600.0
    _state: dict[str, _Failures] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _free(self, key: str) -> int:
        return self.free_client if key.startswith("client:") else self.free_user

    def wait(self, keys: list[str], now: float | None = None) -> float:
        """Seconds before another attempt is allowed for these keys (0: go ahead)."""
        now = time.time() if now is None else now
        worst = 0.0
        with self._lock:
            for key in keys:
                f = self._state.get(key)
                if f is None:
                    continue
                if now - f.last > self.forget_after:
                    del self._state[key]
                    continue
                over = f.count - self._free(key)
                if over >= 0:
                    worst = max(worst, f.last + min(2.0 ** over, self.max_wait) - now)
        return max(worst, 0.0)

    def failure(self, keys: list[str], now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self._lock:
            for key in keys:
                f = self._state.setdefault(key, _Failures())
                f.count += 1
                f.last = now

    def success(self, keys: list[str]) -> None:
        with self._lock:
            for key in keys:
                self._state.pop(key, None)


THROTTLE = Throttle()  # in memory; the app uses the store-backed one (medmm.app.sessions.StoreThrottle)
_USER_LOCKS = tuple(threading.Lock() for _ in range(64))  # attempts for one name run one at a time (N8)


def _user_lock(name: str) -> threading.Lock:
    return _USER_LOCKS[hashlib.sha256(name.encode("utf-8", "replace")).digest()[0] % len(_USER_LOCKS)]


@dataclass(frozen=True)
class LoginResult:
    role: str | None
    wait_seconds: float = 0.0  # > 0: refused without checking the password (throttled)

    @property
    def ok(self) -> bool:
        return self.role is not None


def login(users_file: str, name: str, password: str, client: str | None, throttle: Throttle | None = None,
          now: float | None = None) -> LoginResult:
    """Check a login with throttling (default: the server's :data:`THROTTLE`); re-hash an old-cost hash on success."""
    throttle = throttle if throttle is not None else THROTTLE
    keys = [f"user:{name}", f"client:{client or 'unknown'}"]
    with _user_lock(name):  # parallel attempts for one name queue here (N8)
        wait = throttle.wait(keys, now)
        if wait > 0:
            return LoginResult(None, wait)
        throttle.failure(keys, now)  # counted before the hash: another process's attempt sees it too
        users = load_users(users_file)
        role = authenticate(users, name, password)
        if role is None:
            return LoginResult(None)
        throttle.success(keys)
    if needs_rehash(users[name]):
        record = hash_password(password)
        with _USERS_LOCK:
            current = load_users(users_file)
            if name in current and current[name].get("hash") == users[name].get("hash"):
                current[name] = {**current[name], **record}
                _write_users(users_file, current)
    return LoginResult(role)


# ---------------------------------------------------------------- sessions
@dataclass
class Session:
    """A logged-in app session, bound to the hash of the browser's session cookie."""

    user: str
    role: str
    last_seen: float
    started: float = 0.0
    token_hash: str = ""

    def expired(self, timeout_minutes: float, now: float | None = None) -> bool:
        return ((now or time.time()) - self.last_seen) > timeout_minutes * 60

    def too_old(self, max_hours: float, now: float | None = None) -> bool:
        return ((now or time.time()) - (self.started or self.last_seen)) > max_hours * 3600

    def touch(self, now: float | None = None) -> None:
        self.last_seen = now or time.time()


@dataclass(frozen=True)
class AppConfig:
    db: str = "demo-out/audit.sqlite"
    users_file: str = "demo-out/users.yaml"
    session_timeout_minutes: float = 30.0   # idle: the page blanks and the login ends
    session_max_hours: float = 12.0         # absolute lifetime of a login
    checker: str = "rules"
    model: str | None = None
    upload_max_mb: int = 200                # one Check-now upload (the zip itself)
    upload_max_expanded_mb: int = 1024      # a zip's members together, expanded
    upload_max_members: int = 5000
    upload_max_ratio: float = 200.0         # expanded / compressed, per member
    deid_uploads: bool = False              # de-identify Check-now DICOM uploads (PS3.15) before checking/saving
    # Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto (and sign-on header) are believed: addresses or
    # networks (e.g. ["127.0.0.1"]). Empty (the default): nobody's; the client is the connection's peer.
    trusted_proxies: tuple[str, ...] = ()
    # Trusted-header single sign-on (off by default): the header an authenticating proxy sets to the user name
    # (oauth2-proxy: X-Forwarded-User or X-Auth-Request-User). Honoured only from trusted_proxies.
    sso_header: str | None = None

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
        if "trusted_proxies" in raw:
            raw["trusted_proxies"] = tuple(parse_networks(raw["trusted_proxies"] or [], path))
        if raw.get("sso_header") is not None:
            header = str(raw["sso_header"]).strip()
            if not header or not header.replace("-", "").replace("_", "").isalnum():
                raise ConfigError(f"{path}: sso_header {header!r} is not a header name (e.g. X-Forwarded-User)")
            if not raw.get("trusted_proxies"):
                raise ConfigError(f"{path}: sso_header needs trusted_proxies (the proxy that sets it); without them "
                                  "anyone could send the header")
            raw["sso_header"] = header
        return cls(**raw)


def parse_networks(values: Any, where: str = "app config") -> list[str]:
    """Validated proxy addresses / networks (``10.0.0.5``, ``10.0.0.0/24``, ``::1``)."""
    import ipaddress

    if isinstance(values, str):
        values = [values]
    out = []
    for v in values:
        try:
            out.append(str(ipaddress.ip_network(str(v).strip(), strict=False)))
        except ValueError as exc:
            raise ConfigError(f"{where}: trusted_proxies entry {v!r} is not an IP address or network") from exc
    return out
