"""The review app's web server: Streamlit's own server (``st.App``, Starlette + uvicorn) with
medmm's security middleware in front of it. ``medmm app`` starts it as
``python -m medmm.app.server SCRIPT --port P --address A`` (the app config and store come from
``MEDMM_APP_CONFIG`` / ``MEDMM_APP_DB``).

The middleware (:class:`SecurityMiddleware`):

- takes the client address and the scheme from ``X-Forwarded-For`` / ``X-Forwarded-Proto`` only
  when the connection comes from a configured trusted proxy (``trusted_proxies``; uvicorn's own
  proxy-header handling is switched off so this list is the only one); from anyone else those
  headers and the sign-on header are removed before Streamlit sees the request;
- gives every browser a random, server-signed session token in an HttpOnly, SameSite=Strict
  cookie (``__Host-medmm_session`` + Secure over TLS, where the plain cookie is not accepted);
  a cookie value it did not sign is ignored and replaced, and a login always ends in a new token
  (``/_medmm/login``, :meth:`medmm.app.sessions.Registry.complete_rotation`);
- refuses a websocket that presents an existing, logged-in session ID without that session's
  cookie (session takeover with the ID alone), one with a repeated ``Sec-WebSocket-Protocol``
  header (Streamlit reads the first, a guard reading another would be fooled), and uploads to a
  session from another browser;
- serves ``/media/`` (images, downloads) only to a browser whose token is logged in;
- in trusted-header sign-on mode (``sso_header``), logs the proxy's user in under a new token;
- adds ``X-Frame-Options: DENY``, a Content-Security-Policy (no remote images, scripts, frames
  or connections; no framing), ``X-Content-Type-Options``, ``Referrer-Policy: no-referrer`` and
  ``Cache-Control: no-store`` to every response.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from medmm.app.sessions import COOKIE, REGISTRY, ROTATE_PATH, SECURE_COOKIE, Registry, cookie_token, token_hash

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; media-src 'self' blob: data:; "
       "frame-src 'self' blob: data:; worker-src 'self' blob:; object-src 'none'; base-uri 'self'; "
       "form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = [
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]

# streamlit server settings medmm always uses (production: no tracebacks, no file watcher,
# no developer toolbar, XSRF on, the agent API off, no usage statistics)
STREAMLIT_SETTINGS: dict[str, Any] = {
    "client.showErrorDetails": "none",
    "client.toolbarMode": "minimal",
    "server.fileWatcherType": "none",
    "server.runOnSave": False,
    "server.enableXsrfProtection": True,
    "server.enableCORS": True,
    "server.enableAgentApi": False,
    "server.enableStaticServing": False,
    "server.headless": True,
    "browser.gatherUsageStats": False,
}

# headers a request may carry once: a second copy would be read by one layer and not by another
_SINGLE = (b"sec-websocket-protocol", b"x-forwarded-proto", b"host", b"origin")
_FORWARDING = (b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-real-ip", b"forwarded")


def _headers(scope: Scope) -> dict[str, str]:
    """Headers by lower-case name; repeated ones joined with ", " (cookies with "; ")."""
    out: dict[str, str] = {}
    for k, v in scope.get("headers", []):
        name, value = k.decode("latin-1").lower(), v.decode("latin-1")
        if name in out:
            out[name] = out[name] + ("; " if name == "cookie" else ", ") + value
        else:
            out[name] = value
    return out


def _repeated(scope: Scope, names: tuple[bytes, ...]) -> bytes | None:
    seen: set[bytes] = set()
    for k, _ in scope.get("headers", []):
        k = k.lower()
        if k in names:
            if k in seen:
                return k
            seen.add(k)
    return None


def _cookies(headers: dict[str, str]) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:  # noqa: BLE001 - a malformed cookie header is treated as no cookie
        return {}
    return {k: m.value for k, m in jar.items()}


def _session_cookie(token: str, tls: bool) -> bytes:
    name = SECURE_COOKIE if tls else COOKIE
    return (f"{name}={token}; Path=/; HttpOnly; SameSite=Strict" + ("; Secure" if tls else "")).encode("latin-1")


def _ws_session_id(headers: dict[str, str]) -> str | None:
    """The existing session ID a Streamlit websocket asks to re-attach to (third sub-protocol entry)."""
    entries = [e.strip() for e in headers.get("sec-websocket-protocol", "").split(",")]
    return entries[2] if len(entries) >= 3 and entries[2] else None


class TrustedProxies:
    """The proxies whose forwarding headers are believed (addresses and networks)."""

    def __init__(self, entries: tuple[str, ...] | list[str] = ()) -> None:
        self.networks = [ipaddress.ip_network(e, strict=False) for e in entries]

    def __contains__(self, host: object) -> bool:
        try:
            ip = ipaddress.ip_address(str(host))
        except ValueError:
            return False
        return any(ip in n for n in self.networks)

    def client(self, peer: str, forwarded_for: str) -> str:
        """The address of the first hop, right to left, that is not a trusted proxy."""
        hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
        for hop in reversed(hops):
            if hop not in self:
                return hop
        return hops[0] if hops else peer


class SecurityMiddleware:
    """Pure ASGI middleware (see the module docstring)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], registry: Registry = REGISTRY,
                 base_url: str = "", trusted_proxies: tuple[str, ...] | list[str] = (), sso_header: str | None = None,
                 users_file: str | None = None, idle_seconds: float | None = None,
                 max_seconds: float | None = None) -> None:
        self.app = app
        self.idle_seconds, self.max_seconds = idle_seconds, max_seconds
        self.registry = registry
        self.base = "/" + base_url.strip("/") if base_url.strip("/") else ""
        self.trusted = TrustedProxies(tuple(trusted_proxies))
        self.sso = sso_header.lower().encode("latin-1") if sso_header else None
        self.users_file = users_file

    def _forwarding(self, scope: Scope) -> tuple[Scope, str | None, bool, str | None]:
        """A copy of the scope with the client/scheme the trusted proxies vouch for (forwarding and
        sign-on headers removed when the peer is not one); the client, TLS and the sign-on user."""
        peer = (scope.get("client") or ("", 0))[0]
        scope = dict(scope)
        headers = _headers(scope)
        if peer in self.trusted:
            client = self.trusted.client(peer, headers.get("x-forwarded-for", ""))
            proto = headers.get("x-forwarded-proto", "").strip().lower()
            tls = scope.get("scheme") in ("https", "wss") or proto in ("https", "wss")
            if tls:
                scope["scheme"] = "wss" if scope["type"] == "websocket" else "https"
            scope["client"] = (client, (scope.get("client") or ("", 0))[1])
            sso_user = headers.get(self.sso.decode("latin-1")).strip() if self.sso and self.sso.decode(
                "latin-1") in headers else None
            return scope, client, tls, sso_user or None
        drop = set(_FORWARDING) | ({self.sso} if self.sso else set())
        scope["headers"] = [(k, v) for k, v in scope.get("headers", []) if k.lower() not in drop]
        return scope, peer or None, scope.get("scheme") in ("https", "wss"), None

    @staticmethod
    def _only_cookie(scope: Scope, keep: tuple[str, str] | None) -> None:
        """Rewrite the Cookie header so the app sees exactly the session cookie accepted here (or none)."""
        jar = _cookies(_headers(scope))
        others = [f"{k}={v}" for k, v in jar.items() if k not in (COOKIE, SECURE_COOKIE)]
        if keep is not None:
            others.append(f"{keep[0]}={keep[1]}")
        headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"cookie"]
        if others:
            headers.append((b"cookie", "; ".join(others).encode("latin-1")))
        scope["headers"] = headers

    def _live(self, bound: str | None) -> bool:
        """Whether this token's login may fetch media now: logged in, the user still there with the same
        role, not idle or older than the app allows (the app ends such logins at its next rerun)."""
        login = self.registry.login(bound)
        if login is None:
            return False
        now = time.time()
        if self.idle_seconds is not None and now - (login.last_seen or login.started) > self.idle_seconds:
            return False
        if self.max_seconds is not None and now - login.started > self.max_seconds:
            return False
        if self.users_file:
            from medmm.app.auth import load_users

            rec = load_users(self.users_file).get(login.user)
            return rec is not None and rec.get("role") == login.role
        return True

    def _sso_role(self, user: str) -> str | None:
        from medmm.app.auth import load_users

        if not self.users_file:
            return None
        rec = load_users(self.users_file).get(user)
        return rec.get("role") if rec else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        repeated = _repeated(scope, _SINGLE + ((self.sso,) if self.sso else ()))
        if repeated is not None:  # N2: one layer would read the first copy, another the last
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            else:
                await _plain(send, 400, b"repeated " + repeated + b" header refused")
            return
        scope, client, tls, sso_user = self._forwarding(scope)
        headers = _headers(scope)
        name = SECURE_COOKIE if tls else COOKIE
        offered = cookie_token(_cookies(headers), tls)
        token = offered if self.registry.valid(offered) else None  # N1: only tokens this server signed
        self._only_cookie(scope, (name, token) if token else None)
        bound = token_hash(token) if token else None
        path = scope.get("path", "")
        rel = path[len(self.base):] if self.base and path.startswith(self.base) else path

        if scope["type"] == "websocket":
            sid = _ws_session_id(headers)
            owner = self.registry.session_token(sid) if sid else None
            if owner is not None and owner != bound:
                await send({"type": "websocket.close", "code": 1008})  # policy violation: not this browser's session
                return
            if sso_user is not None:
                login = self.registry.login(bound)
                if login is not None and login.user != sso_user:  # the proxy now vouches for someone else
                    await send({"type": "websocket.close", "code": 1008})
                    return
            await self.app(scope, receive, send)
            return

        set_cookie: bytes | None = None
        if rel == ROTATE_PATH:  # the end of a password login: a new token, never the one the browser had
            nonce = (parse_qs(scope.get("query_string", b"").decode("latin-1")).get("r") or [""])[0]
            new = self.registry.complete_rotation(nonce, bound)
            if new is None:
                await _redirect(send, self.base + "/", None)
                return
            await _redirect(send, self.base + "/", _session_cookie(new, tls))
            return
        if sso_user is not None:
            login = self.registry.login(bound)
            if login is None or login.user != sso_user:
                role = self._sso_role(sso_user)
                if role is None:
                    self.registry.log("login_failed", "-", client=client, detail={"method": "sso", "reason": "unknown"})
                    await _plain(send, 403, b"this user is not registered for the review app: ask an administrator "
                                            b"(medmm users add NAME --role reviewer --sso)")
                    return
                if bound is not None:
                    self.registry.revoke(bound, "sso user changed")
                token = self.registry.issue()
                bound = token_hash(token)
                self.registry.start_login(bound, sso_user, role, "sso", time.time())
                self.registry.log("login", sso_user, client=client, detail={"method": "sso"})
                set_cookie = _session_cookie(token, tls)
                self._only_cookie(scope, (name, token))

        if rel.startswith("/_stcore/upload_file/"):
            parts = rel.split("/")
            sid = parts[3] if len(parts) > 3 else ""
            owner = self.registry.session_token(sid)
            if owner is None or owner != bound:
                await _plain(send, 403, b"upload refused: log in from this browser first")
                return
        if rel.startswith("/media/") and not self._live(bound):
            await _plain(send, 403, b"log in to see this")
            return

        if set_cookie is None and token is None:
            set_cookie = _session_cookie(self.registry.issue(), tls)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = list(SECURITY_HEADERS)
                if set_cookie is not None:
                    extra.append((b"set-cookie", set_cookie))
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [(k, v) for k, v in extra
                                                                         if k not in present or k == b"set-cookie"]
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _redirect(send: Send, location: str, set_cookie: bytes | None) -> None:
    headers = [(b"location", location.encode("latin-1")), (b"content-type", b"text/plain; charset=utf-8"),
               *SECURITY_HEADERS]
    if set_cookie is not None:
        headers.append((b"set-cookie", set_cookie))
    await send({"type": "http.response.start", "status": 303, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


async def _plain(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": body})


def build_app(script: str, base_url: str = "", config: Any = None, db: str | None = None) -> Any:
    """``st.App`` serving ``script`` behind :class:`SecurityMiddleware` (``config``: an AppConfig)."""
    import streamlit as st
    from starlette.middleware import Middleware

    if db:
        REGISTRY.attach(db)  # logins, the token key and the back-off in the store (survive a restart)
    kw: dict[str, Any] = {}
    if config is not None:
        kw = {"trusted_proxies": config.trusted_proxies, "sso_header": config.sso_header,
              "users_file": config.users_file, "idle_seconds": config.session_timeout_minutes * 60,
              "max_seconds": config.session_max_hours * 3600}
    return st.App(script, middleware=[Middleware(SecurityMiddleware, base_url=base_url, **kw)])


def main(argv: list[str] | None = None) -> int:
    from medmm.app.auth import AppConfig

    p = argparse.ArgumentParser(prog="python -m medmm.app.server")
    p.add_argument("script")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--address", default="127.0.0.1")
    p.add_argument("--max-upload-mb", type=int, default=200)
    a = p.parse_args(argv)
    # uvicorn would rewrite the client and scheme from X-Forwarded-* for 127.0.0.1 by itself (N7): off, so
    # the app config's trusted_proxies is the one list that decides
    os.environ["FORWARDED_ALLOW_IPS"] = ""
    cfg = AppConfig.load(os.environ.get("MEDMM_APP_CONFIG"))
    db = os.environ.get("MEDMM_APP_DB") or cfg.db
    settings = {**STREAMLIT_SETTINGS, "server.port": a.port, "server.address": a.address,
                "server.maxUploadSize": a.max_upload_mb}
    build_app(a.script, config=cfg, db=db if os.path.isfile(db) else None).run(config=settings)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
