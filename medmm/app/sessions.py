"""Binding a review-app login to a secret only the user's browser holds.

Streamlit identifies a session by an ID that travels in websocket sub-protocols and upload URLs
(reverse-proxy logs, Streamlit's own log); a websocket presenting that ID re-attaches to the
session. So a login kept only in ``st.session_state`` can be taken over with the ID alone.

medmm's server (:mod:`medmm.app.server`) gives every browser a random session token in an
HttpOnly, SameSite=Strict cookie (``__Host-`` prefixed and Secure behind TLS); JavaScript cannot
read it and it never appears in a URL. At login the app stores the token's SHA-256 in the
session and in :data:`REGISTRY`; on every rerun the cookie of the connection that triggered it
must hash to the same value (:func:`session_problem`), otherwise the session is cleared and the
login form is shown. The server also refuses websocket re-attachments and uploads that present
a bound session ID without the matching cookie, and serves media (images, downloads) only to a
browser whose token is logged in.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from medmm.app.auth import AppConfig, Session

COOKIE = "medmm_session"
SECURE_COOKIE = "__Host-medmm_session"  # over TLS: the browser then refuses it from subdomains and plain http
NO_CLIENT = "no-network-client"  # the app run without a browser (Streamlit's AppTest): nothing to bind to


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def cookie_token(cookies: Mapping[str, str]) -> str | None:
    """The session token a request carries (the TLS cookie first), or None."""
    for name in (SECURE_COOKIE, COOKIE):
        value = cookies.get(name)
        if value and 20 <= len(value) <= 100 and value.replace("-", "").replace("_", "").isalnum():
            return value
    return None


@dataclass(frozen=True)
class Login:
    user: str
    role: str
    started: float


class Registry:
    """Logged-in tokens (by hash) and the Streamlit session IDs bound to them; in server memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logins: dict[str, Login] = {}
        self._sessions: dict[str, str] = {}  # streamlit session id -> token hash

    def bind(self, session_id: str | None, token_hash_: str, user: str, role: str, now: float | None = None) -> None:
        with self._lock:
            self._logins[token_hash_] = Login(user, role, now or time.time())
            if session_id:
                self._sessions[session_id] = token_hash_

    def login(self, token_hash_: str | None) -> Login | None:
        with self._lock:
            return self._logins.get(token_hash_) if token_hash_ else None

    def session_token(self, session_id: str) -> str | None:
        """The token hash a Streamlit session is bound to (None: not logged in)."""
        with self._lock:
            return self._sessions.get(session_id)

    def unbind(self, session_id: str | None) -> None:
        with self._lock:
            self._sessions.pop(session_id or "", None)

    def revoke(self, token_hash_: str) -> None:
        """Log the token out everywhere (logout: every tab of that browser)."""
        with self._lock:
            self._logins.pop(token_hash_, None)
            for sid in [s for s, h in self._sessions.items() if h == token_hash_]:
                del self._sessions[sid]


REGISTRY = Registry()


def session_problem(session: Session, bind_hash: str, users: Mapping[str, Mapping[str, Any]], cfg: AppConfig,
                    registry: Registry = REGISTRY, now: float | None = None) -> str | None:
    """Why this logged-in session must end now (shown to the user), or None if it may go on.

    Checked on every rerun: the connection's cookie, the users file (a removed user or changed
    role takes effect at once), the idle timeout and the absolute lifetime.
    """
    now = now or time.time()
    if bind_hash != session.token_hash or registry.login(session.token_hash) is None:
        return "Please log in (this page was opened from another browser or the login ended)."
    rec = users.get(session.user)
    if rec is None or rec.get("role") != session.role:
        return "Your account was changed by an administrator; please log in again."
    if session.expired(cfg.session_timeout_minutes, now):
        return "Your session expired after inactivity; please log in again."
    if session.too_old(cfg.session_max_hours, now):
        return f"Logins last at most {cfg.session_max_hours:g} hours; please log in again."
    return None
