"""Credentials, errors and retries shared by the PACS and report-feed clients.

**Credentials** come from the environment or a file, never from the command line (which other
users of the machine see in ``ps``) and never into a log, a message or the store:
:class:`Credentials` prints as ``Credentials(user='U', password=<hidden>)``. A wrong password is an
:class:`AuthenticationError` whose message names the server and the user, never the password.

**Retries**: :func:`with_retries` retries what a restart or a network blip causes (connection
refused or reset, timeouts, HTTP 429/502/503/504) with exponential backoff, and nothing else:
an authentication failure or a 4xx is an answer, not an outage. After the last attempt it raises
:class:`PacsUnavailable`; the audit then stops with what it committed kept, and the next run goes
on from there (nothing is recorded as failed for an outage, so nothing is skipped later).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Callable, TypeVar

from medmm.errors import InputError, MedmmError

T = TypeVar("T")

__all__ = ["AuthenticationError", "Credentials", "PacsUnavailable", "RetryPolicy", "redact_url", "with_retries"]


class AuthenticationError(MedmmError):
    """The server refused the credentials (HTTP 401/403, DIMSE association rejected)."""


class PacsUnavailable(MedmmError):
    """The PACS (or report server) did not answer after the retries: an outage, not bad input."""


@dataclass(frozen=True)
class Credentials:
    """A user and password for a PACS or FHIR server (the password never printed)."""

    user: str
    password: str = field(repr=False)

    def __repr__(self) -> str:
        return f"Credentials(user={self.user!r}, password=<hidden>)"

    __str__ = __repr__

    @classmethod
    def from_options(cls, user: str | None, password_env: str | None = None,
                     password_file: str | None = None) -> "Credentials | None":
        """From ``--pacs-user`` and ``--pacs-password-env VAR`` or ``--pacs-password-file FILE`` (first line)."""
        if not user and not password_env and not password_file:
            return None
        if not user:
            raise InputError("a PACS password was given without --pacs-user: give the user name too")
        if password_env and password_file:
            raise InputError("give the PACS password in one place: --pacs-password-env or --pacs-password-file")
        if password_env:
            if password_env not in os.environ:
                raise InputError(f"--pacs-password-env {password_env}: that environment variable is not set")
            return cls(user, os.environ[password_env])
        if password_file:
            try:
                with open(password_file, encoding="utf-8") as fh:
                    first = fh.readline().rstrip("\r\n")
            except OSError as exc:
                raise InputError(f"--pacs-password-file: cannot read it ({exc.strerror})") from exc
            if os.name == "posix" and os.stat(password_file).st_mode & 0o077:
                raise InputError("--pacs-password-file: the file is readable by other users; chmod 600 it first")
            return cls(user, first)
        raise InputError("--pacs-user needs a password: --pacs-password-env VAR or --pacs-password-file FILE")


def redact_url(url: str) -> str:
    """A URL without any ``user:password@`` part (what may be shown or stored as a source name)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = host + (f":{parts.port}" if parts.port else "")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts._replace(query="", fragment=""))


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry an operation that failed for a transient reason."""

    attempts: int = 5
    first_wait: float = 0.5  # seconds before the second attempt; doubled each time
    max_wait: float = 30.0
    timeout: float = 30.0  # per request (connect and read)


def _transient(exc: BaseException) -> bool:
    """Whether an exception looks like an outage (worth retrying) rather than an answer."""
    import socket

    try:
        import requests
    except ImportError:  # pragma: no cover - requests comes with dicomweb-client
        requests = None  # type: ignore[assignment]
    if isinstance(exc, (ConnectionError, TimeoutError, socket.timeout)):
        return True
    if requests is not None:
        if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
            return True
        if isinstance(exc, requests.HTTPError) and exc.response is not None:
            return exc.response.status_code in (429, 500, 502, 503, 504)
    return isinstance(exc, PacsUnavailable)


def with_retries(op: Callable[[], T], what: str, policy: RetryPolicy = RetryPolicy(),
                 sleep: Callable[[float], None] = time.sleep) -> T:
    """Run ``op``; on a transient failure wait (exponential backoff) and try again, up to
    ``policy.attempts`` times; then raise :class:`PacsUnavailable` naming ``what`` (never a URL's query)."""
    wait = policy.first_wait
    for attempt in range(1, policy.attempts + 1):
        try:
            return op()
        except AuthenticationError:
            raise
        except Exception as exc:  # noqa: BLE001 - classified just below; anything else is re-raised
            if not _transient(exc):
                raise
            if attempt == policy.attempts:
                raise PacsUnavailable(f"{what}: no answer after {policy.attempts} attempts ({type(exc).__name__}); "
                                      "the audit stopped with everything checked so far kept: run the same command "
                                      "again when the server is back") from exc
            sleep(min(wait, policy.max_wait))
            wait *= 2
    raise AssertionError("unreachable")  # pragma: no cover
