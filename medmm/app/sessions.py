"""Binding a review-app login to a secret only the user's browser holds, issued by the server.

Streamlit identifies a session by an ID that travels in websocket sub-protocols and upload URLs
(reverse-proxy logs, Streamlit's own log); a websocket presenting that ID re-attaches to the
session. So a login kept only in ``st.session_state`` can be taken over with the ID alone.

medmm's server (:mod:`medmm.app.server`) gives every browser a random session token in an
HttpOnly, SameSite=Strict cookie (``__Host-`` prefixed and Secure behind TLS; behind TLS the plain
cookie is not accepted at all); JavaScript cannot read it and it never appears in a URL.

**Tokens are issued by the server only** (issue 20 N1): a token is 32 random characters plus an
HMAC of them under the store's session key; a cookie value the server did not sign is ignored and
replaced. **A login never adopts the token the browser had before it**: after the password check
the app sends the browser to ``/_medmm/login?r=NONCE`` (a one-time, 60-second nonce bound to the
old token's hash); the server then issues a *new* token, records the login under the new token's
hash and sets the cookie (:meth:`Registry.complete_rotation`). A value planted in the victim's
browser before login (a sibling subdomain, a shared workstation) therefore never becomes a logged-in
session.

Logins (token hash -> user, role, start, last activity) and failed-login counters live in the
review store (:mod:`medmm.audit.logins`), so a restart logs nobody out and resets no back-off; the
Streamlit session IDs bound to a login are in memory (Streamlit's sessions do not survive a
restart either). On every rerun the cookie of the connection that triggered it must hash to the
login's token (:func:`session_problem`). Logins, failures, logouts and ended sessions are written to
the store's hash-chained access log (:mod:`medmm.audit.access_log`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from medmm.app.auth import AppConfig, Session, Throttle

COOKIE = "medmm_session"
SECURE_COOKIE = "__Host-medmm_session"  # over TLS: the browser then refuses it from subdomains and plain http
NO_CLIENT = "no-network-client"  # the app run without a browser (Streamlit's AppTest): nothing to bind to
ROTATE_PATH = "/_medmm/login"  # where the app sends the browser after a password check (a new token is issued)
ROTATION_SECONDS = 60.0
_RANDOM_LEN, _SIG_LEN = 32, 32


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def _well_formed(value: str | None) -> bool:
    return bool(value) and 20 <= len(value or "") <= 100 and (value or "").replace("-", "").replace("_", "").isalnum()


def cookie_token(cookies: Mapping[str, str], tls: bool | None = None) -> str | None:
    """The session token a request carries, or None. ``tls`` True: only the ``__Host-`` cookie;
    False: only the plain one; None (the app, behind medmm's server, which already dropped every
    cookie it did not accept): either."""
    names = (SECURE_COOKIE,) if tls else (COOKIE,) if tls is False else (SECURE_COOKIE, COOKIE)
    for name in names:
        value = cookies.get(name)
        if _well_formed(value):
            return value
    return None


@dataclass(frozen=True)
class Login:
    user: str
    role: str
    started: float
    last_seen: float = 0.0
    method: str = "password"


@dataclass(frozen=True)
class _Rotation:
    old_hash: str
    user: str
    role: str
    method: str
    client: str | None
    expires: float


class Registry:
    """Logged-in tokens (by hash; in the review store once :meth:`attach` ed, else in memory), the
    Streamlit session IDs bound to them (memory), pending login rotations (memory), the token-signing
    key and the login back-off."""

    def __init__(self, db: str | None = None) -> None:
        self._lock = threading.RLock()
        self._logins: dict[str, Login] = {}
        self._sessions: dict[str, str] = {}  # streamlit session id -> token hash
        self._rotations: dict[str, _Rotation] = {}
        self._key = secrets.token_bytes(32)
        self._store: Any = None
        self.db: str | None = None
        self._throttle: Throttle = Throttle()
        if db:
            self.attach(db)

    # ------------------------------------------------------------ persistence
    def attach(self, db: str | None) -> None:
        """Keep logins, the signing key and the back-off in the store at ``db`` (idempotent)."""
        if not db or db == self.db:
            return
        from medmm.audit import logins
        from medmm.audit.store import Store

        with self._lock:
            if self._store is not None:
                self._store.close()
            self._store = Store(db)
            self.db = db
            with self._store.transaction() as c:
                self._key = logins.session_key(c)
                logins.prune(c)  # session rows idle for 90 days (the access log keeps the history)
            self._throttle = StoreThrottle(self)
            self._logins.clear()

    def _conn(self) -> Any:
        return self._store.transaction()

    @property
    def throttle(self) -> Throttle:
        """The login back-off (in the store when attached)."""
        return self._throttle

    def log(self, event: str, user: str, study_key: str | None = None, client: str | None = None,
            detail: dict[str, Any] | None = None) -> None:
        """Append an access-log event (nothing when no store is attached)."""
        if self._store is None:
            return
        with self._lock:
            self._store.record_access(event, user, study_key, client, detail)

    # ------------------------------------------------------------ tokens
    def issue(self) -> str:
        """A new token signed with the store's key (the only tokens :meth:`valid` accepts)."""
        rnd = secrets.token_urlsafe(24)[:_RANDOM_LEN]
        return rnd + hmac.new(self._key, rnd.encode("ascii"), hashlib.sha256).hexdigest()[:_SIG_LEN]

    def valid(self, token: str | None) -> bool:
        if not token or len(token) != _RANDOM_LEN + _SIG_LEN or not _well_formed(token):
            return False
        rnd, sig = token[:_RANDOM_LEN], token[_RANDOM_LEN:]
        return hmac.compare_digest(sig, hmac.new(self._key, rnd.encode("ascii"), hashlib.sha256).hexdigest()[:_SIG_LEN])

    # ------------------------------------------------------------ logins
    def start_login(self, token_hash_: str, user: str, role: str, method: str = "password",
                    now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self._lock:
            if self._store is None:
                self._logins[token_hash_] = Login(user, role, now, now, method)
                return
            from medmm.audit import logins

            with self._conn() as c:
                logins.start(c, token_hash_, user, role, method, now)

    def login(self, token_hash_: str | None) -> Login | None:
        if not token_hash_:
            return None
        with self._lock:
            if self._store is None:
                return self._logins.get(token_hash_)
            from medmm.audit import logins

            got = logins.get(self._store.conn, token_hash_)
            return Login(got.user, got.role, got.started, got.last_seen, got.method) if got else None

    def touch(self, token_hash_: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self._lock:
            if self._store is None:
                old = self._logins.get(token_hash_)
                if old is not None:
                    self._logins[token_hash_] = Login(old.user, old.role, old.started, now, old.method)
                return
            from medmm.audit import logins

            with self._conn() as c:
                logins.touch(c, token_hash_, now)

    def bind(self, session_id: str | None, token_hash_: str, user: str, role: str, now: float | None = None) -> None:
        """Bind a Streamlit session to a token; logs the token in if it is not (the app does this only
        for :data:`NO_CLIENT`: a browser's login is created by :meth:`complete_rotation`)."""
        with self._lock:
            if self.login(token_hash_) is None:
                self.start_login(token_hash_, user, role, "password", now)
            if session_id:
                self._sessions[session_id] = token_hash_

    def bind_session(self, session_id: str | None, token_hash_: str) -> None:
        with self._lock:
            if session_id:
                self._sessions[session_id] = token_hash_

    def session_token(self, session_id: str) -> str | None:
        """The token hash a Streamlit session is bound to (None: not logged in)."""
        with self._lock:
            return self._sessions.get(session_id)

    def unbind(self, session_id: str | None) -> None:
        with self._lock:
            self._sessions.pop(session_id or "", None)

    def revoke(self, token_hash_: str, reason: str = "logout") -> None:
        """Log the token out everywhere (logout: every tab of that browser)."""
        with self._lock:
            self._logins.pop(token_hash_, None)
            if self._store is not None:
                from medmm.audit import logins

                with self._conn() as c:
                    logins.end(c, token_hash_, reason)
            for sid in [s for s, h in self._sessions.items() if h == token_hash_]:
                del self._sessions[sid]

    def revoke_user(self, user: str, reason: str) -> int:
        """End every login of ``user`` (an administrator's action)."""
        with self._lock:
            gone = [h for h, lg in self._logins.items() if lg.user == user]
            for h in gone:
                self._logins.pop(h, None)
            n = len(gone)
            if self._store is not None:
                from medmm.audit import logins

                with self._conn() as c:
                    n += logins.end_user(c, user, reason)
            return n

    # ------------------------------------------------------------ rotation at login (N1)
    def begin_rotation(self, old_hash: str, user: str, role: str, method: str = "password",
                       client: str | None = None, now: float | None = None) -> str:
        """A one-time nonce the browser holding ``old_hash`` exchanges for a new, logged-in token."""
        now = time.time() if now is None else now
        nonce = secrets.token_urlsafe(32)
        with self._lock:
            self._rotations = {k: r for k, r in self._rotations.items() if r.expires > now}
            self._rotations[nonce] = _Rotation(old_hash, user, role, method, client, now + ROTATION_SECONDS)
        return nonce

    def complete_rotation(self, nonce: str, request_hash: str | None, now: float | None = None) -> str | None:
        """The new token (logged in) when ``nonce`` is pending, fresh and presented by the browser that
        asked for it; None otherwise. The nonce is spent either way; the old token is never logged in."""
        now = time.time() if now is None else now
        with self._lock:
            rot = self._rotations.pop(nonce, None)
            if rot is None or rot.expires < now or request_hash is None or \
                    not hmac.compare_digest(rot.old_hash, request_hash):
                return None
            token = self.issue()
            self.start_login(token_hash(token), rot.user, rot.role, rot.method, now)
            for sid, h in list(self._sessions.items()):
                if h == rot.old_hash:
                    del self._sessions[sid]
        self.log("login", rot.user, client=rot.client, detail={"method": rot.method})
        return token


class StoreThrottle(Throttle):
    """:class:`Throttle` whose counters are the store's ``login_failures`` rows (survive a restart)."""

    def __init__(self, registry: Registry, **kw: Any) -> None:
        super().__init__(**kw)
        self._registry = registry

    def wait(self, keys: list[str], now: float | None = None) -> float:
        from medmm.audit import logins

        now = time.time() if now is None else now
        reg = self._registry
        with reg._lock:
            got = logins.failures(reg._store.conn, keys)
        worst = 0.0
        for key, (count, last) in got.items():
            if now - last > self.forget_after:
                continue
            over = count - self._free(key)
            if over >= 0:
                worst = max(worst, last + min(2.0 ** over, self.max_wait) - now)
        return max(worst, 0.0)

    def failure(self, keys: list[str], now: float | None = None) -> None:
        from medmm.audit import logins

        now = time.time() if now is None else now
        reg = self._registry
        with reg._lock, reg._conn() as c:
            for key, (_, last) in logins.failures(c, keys).items():
                if now - last > self.forget_after:
                    logins.clear_failures(c, [key])
            logins.add_failure(c, keys, now)

    def success(self, keys: list[str]) -> None:
        from medmm.audit import logins

        reg = self._registry
        with reg._lock, reg._conn() as c:
            logins.clear_failures(c, keys)


REGISTRY = Registry()


def session_problem(session: Session, bind_hash: str, users: Mapping[str, Mapping[str, Any]], cfg: AppConfig,
                    registry: Registry = REGISTRY, now: float | None = None) -> str | None:
    """Why this logged-in session must end now (shown to the user), or None if it may go on.

    Checked on every rerun: the connection's cookie, the login in the registry (ended by a logout in
    another tab or by an administrator), the users file (a removed user or changed role takes effect
    at once), the idle timeout and the absolute lifetime.
    """
    now = now or time.time()
    login = registry.login(session.token_hash)
    if bind_hash != session.token_hash or login is None or login.user != session.user:
        return "Please log in (this page was opened from another browser or the login ended)."
    rec = users.get(session.user)
    if rec is None or rec.get("role") != session.role:
        return "Your account was changed by an administrator; please log in again."
    # idle: the login's last activity in any tab of that browser (the registry), else this tab's
    last_seen = login.last_seen or session.last_seen
    if (now - last_seen) > cfg.session_timeout_minutes * 60:
        return "Your session expired after inactivity; please log in again."
    if session.too_old(cfg.session_max_hours, now) or (now - login.started) > cfg.session_max_hours * 3600:
        return f"Logins last at most {cfg.session_max_hours:g} hours; please log in again."
    return None
