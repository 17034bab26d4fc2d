"""DiagnosticReports from a FHIR server (``--reports fhir:https://ehr.example.org/fhir``).

A FHIR search ``GET [base]/DiagnosticReport?_count=100[&issued=geYYYY-MM-DD]``, following the Bundle's
``next`` links page by page; each page is read by :func:`medmm.hospital.reports.read_fhir_bundle`
(R4 or R5). The same transport rules as the PACS: credentials from ``--reports-user`` and
``--reports-password-env`` / ``--reports-password-file`` (never printed), TLS verified, a timeout per
request, retries with backoff on an outage, HTTP 401/403 an :class:`AuthenticationError`. A ``next``
link to another host is refused (a server must not send medmm's credentials elsewhere).
"""

from __future__ import annotations

from typing import Any, Iterator
from urllib.parse import urlsplit

from medmm.errors import InputError
from medmm.hospital.net import AuthenticationError, Credentials, RetryPolicy, redact_url, with_retries
from medmm.hospital.reports import ReportMessage, read_fhir_bundle

__all__ = ["read_fhir_server"]

MAX_PAGES = 100_000


def read_fhir_server(base: str, credentials: Credentials | None = None, *, policy: RetryPolicy = RetryPolicy(),
                     ca_bundle: str | None = None, since: str | None = None) -> Iterator[ReportMessage]:
    """Every DiagnosticReport the server's search returns (``since``: ``YYYYMMDD``, on ``issued``)."""
    import requests

    if "@" in urlsplit(base).netloc:
        raise InputError("the FHIR URL carries a user or password: give them as --reports-user and "
                         "--reports-password-env VAR instead")
    name = f"fhir:{redact_url(base)}"
    session = requests.Session()
    session.verify = ca_bundle if ca_bundle else True
    session.trust_env = False
    if credentials is not None:
        session.auth = (credentials.user, credentials.password)
    params: dict[str, Any] | None = {"_count": 100}
    if since:
        params["issued"] = f"ge{since[:4]}-{since[4:6]}-{since[6:8]}"  # type: ignore[index]
    url: str | None = base.rstrip("/") + "/DiagnosticReport"
    host = urlsplit(url).netloc
    for _ in range(MAX_PAGES):
        if url is None:
            return
        if urlsplit(url).netloc != host:
            raise InputError(f"{name}: the server's next page is on another host; not followed")

        def get(u: str = url, p: dict[str, Any] | None = params) -> Any:
            r = session.get(u, params=p, timeout=policy.timeout, headers={"Accept": "application/fhir+json"})
            if r.status_code in (401, 403):
                user = f" user {credentials.user!r}" if credentials else " (no --reports-user given)"
                raise AuthenticationError(f"{name}: authentication failed for{user} (HTTP {r.status_code}): check "
                                          "--reports-user and the password in --reports-password-env / -file")
            r.raise_for_status()
            return r.json()

        bundle = with_retries(get, f"{name} search", policy)
        yield from read_fhir_bundle(name, bundle)
        url = next((link.get("url") for link in bundle.get("link") or [] if link.get("relation") == "next"), None)
        params = None  # the next link carries the query
    raise InputError(f"{name}: more than {MAX_PAGES} pages; narrow the window with --since")
