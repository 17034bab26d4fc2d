"""The review app's web server: Streamlit's own server (``st.App``, Starlette + uvicorn) with
medmm's security middleware in front of it. ``medmm app`` starts it as
``python -m medmm.app.server SCRIPT --port P --address A``.

The middleware (:class:`SecurityMiddleware`):

- gives every browser a random session token in an HttpOnly, SameSite=Strict cookie
  (``__Host-medmm_session`` + Secure when the request came over TLS, directly or as reported by
  the reverse proxy's ``X-Forwarded-Proto``), which the app binds the login to
  (:mod:`medmm.app.sessions`);
- refuses a websocket that presents an existing, logged-in session ID without that session's
  cookie (session takeover with the ID alone), and uploads to a session from another browser;
- serves ``/media/`` (images, downloads) only to a browser whose token is logged in;
- adds ``X-Frame-Options: DENY``, a Content-Security-Policy (no remote images, scripts, frames
  or connections; no framing), ``X-Content-Type-Options``, ``Referrer-Policy: no-referrer`` and
  ``Cache-Control: no-store`` to every response.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any

from medmm.app.sessions import COOKIE, REGISTRY, SECURE_COOKIE, Registry, cookie_token, new_token, token_hash

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


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _cookies(headers: dict[str, str]) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:  # noqa: BLE001 - a malformed cookie header is treated as no cookie
        return {}
    return {k: m.value for k, m in jar.items()}


def _over_tls(scope: Scope, headers: dict[str, str]) -> bool:
    return scope.get("scheme") in ("https", "wss") or headers.get("x-forwarded-proto", "").lower() == "https"


def _session_cookie(token: str, tls: bool) -> bytes:
    name = SECURE_COOKIE if tls else COOKIE
    return (f"{name}={token}; Path=/; HttpOnly; SameSite=Strict" + ("; Secure" if tls else "")).encode("latin-1")


def _ws_session_id(headers: dict[str, str]) -> str | None:
    """The existing session ID a Streamlit websocket asks to re-attach to (third sub-protocol entry)."""
    entries = [e.strip() for e in headers.get("sec-websocket-protocol", "").split(",")]
    return entries[2] if len(entries) >= 3 and entries[2] else None


class SecurityMiddleware:
    """Pure ASGI middleware (see the module docstring)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], registry: Registry = REGISTRY,
                 base_url: str = "") -> None:
        self.app = app
        self.registry = registry
        self.base = "/" + base_url.strip("/") if base_url.strip("/") else ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        token = cookie_token(_cookies(headers))
        bound = token_hash(token) if token else None
        path = scope.get("path", "")
        rel = path[len(self.base):] if self.base and path.startswith(self.base) else path

        if scope["type"] == "websocket":
            sid = _ws_session_id(headers)
            owner = self.registry.session_token(sid) if sid else None
            if owner is not None and owner != bound:
                await send({"type": "websocket.close", "code": 1008})  # policy violation: not this browser's session
                return
            await self.app(scope, receive, send)
            return

        if rel.startswith("/_stcore/upload_file/"):
            parts = rel.split("/")
            sid = parts[3] if len(parts) > 3 else ""
            owner = self.registry.session_token(sid)
            if owner is None or owner != bound:
                await _plain(send, 403, b"upload refused: log in from this browser first")
                return
        if rel.startswith("/media/") and self.registry.login(bound) is None:
            await _plain(send, 403, b"log in to see this")
            return

        set_cookie = None if token else _session_cookie(new_token(), _over_tls(scope, headers))

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


async def _plain(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": body})


def build_app(script: str, base_url: str = "") -> Any:
    """``st.App`` serving ``script`` behind :class:`SecurityMiddleware`."""
    import streamlit as st
    from starlette.middleware import Middleware

    return st.App(script, middleware=[Middleware(SecurityMiddleware, base_url=base_url)])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m medmm.app.server")
    p.add_argument("script")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--address", default="127.0.0.1")
    p.add_argument("--max-upload-mb", type=int, default=200)
    a = p.parse_args(argv)
    settings = {**STREAMLIT_SETTINGS, "server.port": a.port, "server.address": a.address,
                "server.maxUploadSize": a.max_upload_mb}
    build_app(a.script).run(config=settings)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
