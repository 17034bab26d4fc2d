"""The ``http`` backend: an OpenAI-compatible chat-completions server (vLLM, TGI, Ollama, llama.cpp).

Images travel as base64 PNG data URLs. Requests run with a concurrency limit, a timeout, and
retries with exponential backoff on connection errors, timeouts, 429 and 5xx. Option scoring
uses the ``logprobs``/``top_logprobs`` of the first answer token: it works for options that
are single tokens for the server (yes/no, A/B/C/D); an option outside the returned top-k gets
``-inf``; a server that returns no logprobs makes :meth:`score_options` raise
:class:`UnsupportedError` with that reason. The standard library's ``urllib`` is used on
purpose: no extra dependency, and nothing here needs more than one POST.

Requests carry images of patients and, with ``api_key``, a bearer key. So the backend ignores
``HTTP(S)_PROXY`` unless ``trust_env=True`` (a proxy would see both; with ``trust_env`` and a
proxy set for the URL's scheme it warns), and it warns when the server is not on this machine
(a loopback address or ``localhost``) — loudly when that goes over plain ``http://``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import ipaddress
import json
import math
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

from medmm.errors import InputError
from medmm.models.base import VLM, Generation, ModelError, OptionScore, Request, UnsupportedError, options_per_request

RETRY_STATUS = {408, 429, 500, 502, 503, 504}


class DataLeavesMachineWarning(UserWarning):
    """Images (and a key) are about to be sent beyond this machine."""


def _is_local(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _transport_warnings(url: str, api_key: str | None, trust_env: bool) -> list[str]:
    """Why sending images (and the key) to ``url`` deserves a warning, if it does."""
    parsed = urllib.parse.urlsplit(url)
    out = []
    what = "images" + (" and the API key" if api_key else "")
    if not _is_local(parsed.hostname or ""):
        plain = parsed.scheme == "http"
        out.append(f"the http backend sends {what} to {parsed.hostname}, which is not this machine"
                   + (", over plain http (anyone on the path can read them): use https or a local server" if plain
                      else "; make sure it may receive patient data"))
    if trust_env:
        proxy = urllib.request.getproxies().get(parsed.scheme)
        if proxy and not urllib.request.proxy_bypass(parsed.hostname or ""):
            out.append(f"the http backend sends {what} through the proxy {urllib.parse.urlsplit(proxy).hostname} "
                       f"({parsed.scheme.upper()}_PROXY, trust_env=True)")
    return out


def _data_url(image: Any) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse every redirect: urllib copies the Authorization header to the redirect target, another host
    included (issue 20 N11), and a chat-completions POST turned into a GET is never what was asked."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:
        here, there = urllib.parse.urlsplit(req.full_url), urllib.parse.urlsplit(newurl)
        where = "the same server" if (here.scheme, here.netloc) == (there.scheme, there.netloc) else \
            f"another server ({there.hostname})"
        raise ModelError(f"{req.full_url} answered HTTP {code}, a redirect to {where}; medmm does not follow "
                         "redirects (the API key would go along): give the final URL with --url")


class HTTPVLM(VLM):
    def __init__(self, url: str, model: str | None = None, api_key: str | None = None, timeout: float = 60.0,
                 retries: int = 3, backoff: float = 0.5, concurrency: int = 4, top_logprobs: int = 20,
                 trust_env: bool = False) -> None:
        if not url.startswith(("http://", "https://")):
            raise InputError(f"{url!r}: the http backend needs an http:// or https:// URL")
        self.trust_env = trust_env
        # no proxy from the environment unless asked: a proxy would see every image and the key
        # and no redirect is followed (urllib would re-send the bearer key to whatever host a 30x names)
        self._opener = urllib.request.build_opener(_NoRedirect()) if trust_env else \
            urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())
        for message in _transport_warnings(url, api_key, trust_env):
            warnings.warn(message, DataLeavesMachineWarning, stacklevel=2)
        base = url.rstrip("/")
        self.endpoint = base + ("/chat/completions" if base.endswith("/v1") else "/v1/chat/completions")
        self.url = url
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.concurrency = max(1, concurrency)
        self.top_logprobs = top_logprobs
        self.name = f"http:{url}" + (f" model={model}" if model else "")

    # ------------------------------------------------------------------ protocol
    def messages(self, request: Request) -> list[dict[str, Any]]:
        images = iter(_data_url(im) for im in request.pil_images())
        out = []
        for m in request.chat():
            content = m.get("content")
            if isinstance(content, list):
                parts = []
                for c in content:
                    if c.get("type") == "image":
                        parts.append({"type": "image_url", "image_url": {"url": next(images)}})
                    else:
                        parts.append({"type": "text", "text": c.get("text", "")})
                out.append({"role": m["role"], "content": parts})
            else:
                out.append({"role": m["role"], "content": content})
        return out

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(payload).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last = "no attempt made"
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            req = urllib.request.Request(self.endpoint, data=body, headers=headers, method="POST")
            try:
                with self._opener.open(req, timeout=self.timeout) as resp:
                    return json.loads(resp.read().decode("utf-8"))
            except urllib.error.HTTPError as exc:
                detail = exc.read()[:300].decode("utf-8", "replace")
                last = f"HTTP {exc.code} from {self.endpoint}: {detail}"
                if exc.code not in RETRY_STATUS:
                    raise ModelError(last) from exc
            except urllib.error.URLError as exc:
                reason = exc.reason
                if isinstance(reason, (socket.timeout, TimeoutError)):
                    last = f"{self.endpoint} did not answer within {self.timeout:g} s"
                else:
                    last = f"cannot reach {self.endpoint} ({reason}); is the server running?"
            except (socket.timeout, TimeoutError):
                last = f"{self.endpoint} did not answer within {self.timeout:g} s"
            except (ConnectionError, json.JSONDecodeError) as exc:
                last = f"{self.endpoint}: {type(exc).__name__}: {exc}"
        raise ModelError(f"{last} (after {self.retries + 1} attempt(s))")

    def _payload(self, request: Request, **extra: Any) -> dict[str, Any]:
        payload: dict[str, Any] = {"messages": self.messages(request), **extra}
        if self.model:
            payload["model"] = self.model
        return payload

    def _map(self, fn: Any, items: Sequence[Any]) -> list[Any]:
        if self.concurrency == 1 or len(items) <= 1:
            return [fn(i) for i in items]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(fn, items))

    # ------------------------------------------------------------------ VLM
    def generate(self, requests: Sequence[Request], max_new_tokens: int = 64, temperature: float = 0.0,
                 **kwargs: Any) -> list[Generation]:
        def one(req: Request) -> Generation:
            t0 = time.perf_counter()
            data = self._post(self._payload(req, max_tokens=max_new_tokens, temperature=temperature, **kwargs))
            try:
                choice = data["choices"][0]
                text = choice["message"]["content"] or ""
            except (KeyError, IndexError, TypeError) as exc:
                raise ModelError(f"{self.endpoint}: unexpected response (no choices[0].message.content)") from exc
            usage = data.get("usage") or {}
            return Generation(text, int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)),
                              time.perf_counter() - t0, choice.get("finish_reason"))

        return self._map(one, list(requests))

    def score_option_details(self, requests: Sequence[Request],
                             options: Sequence[str] | Sequence[Sequence[str]]) -> list[list[OptionScore]]:
        per = options_per_request(requests, options)

        def one(item: tuple[Request, list[str]]) -> list[OptionScore]:
            req, opts = item
            data = self._post(self._payload(req, max_tokens=1, temperature=0.0, logprobs=True,
                                            top_logprobs=self.top_logprobs))
            try:
                content = data["choices"][0]["logprobs"]["content"]
                top = content[0]["top_logprobs"]
            except (KeyError, IndexError, TypeError) as exc:
                raise UnsupportedError(
                    f"{self.endpoint} returned no logprobs, so score_options is unsupported with this server; "
                    "use a server that implements logprobs/top_logprobs (e.g. vLLM) or the hf backend"
                ) from exc
            table: dict[str, float] = {}
            for entry in top:
                key = str(entry.get("token", "")).strip()
                if key and key not in table:
                    table[key] = float(entry["logprob"])
            return [OptionScore(o, table.get(o.strip(), -math.inf), 1) for o in opts]

        return self._map(one, list(zip(requests, per)))

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps({"backend": "http", "endpoint": self.endpoint, "model": self.model}).encode()
                              ).hexdigest()[:32]
