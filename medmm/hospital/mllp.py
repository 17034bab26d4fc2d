"""An MLLP listener for live HL7 v2 report feeds (python-hl7's asyncio MLLP streams).

Each message received is read as an ORU^R01 (:func:`medmm.hospital.reports.parse_hl7_message`):
a usable report is written to the spool folder (one ``.hl7`` file, ``\\r`` segments, written to a
temporary name and renamed, so a reader never sees half a message) and answered with an ACK
(``MSA|AA``); anything else is answered with a NAK (``MSA|AE`` with the reason in MSA-3, never the
report text) and not written. The audit reads the spool with ``--reports hl7:SPOOL`` like any
other HL7 folder: the listener never touches the review store, and a message is acknowledged only
once it is safely on disk.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re

from medmm.hospital.reports import parse_hl7_message

__all__ = ["handle", "serve"]


def _spool_name(control_id: str, raw: bytes) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", control_id)[:64] or "message"
    return f"{safe}-{hashlib.sha256(raw).hexdigest()[:12]}.hl7"


def handle(raw: bytes, spool: str) -> tuple[bool, str, str | None]:
    """Accept or refuse one message: (accepted, reason, spooled path)."""
    msg = parse_hl7_message(raw, "mllp")
    if msg.problem:
        return False, msg.problem, None
    os.makedirs(spool, mode=0o700, exist_ok=True)  # reports are PHI: the audit user's only
    path = os.path.join(spool, _spool_name(msg.report_id, raw))
    from medmm.runs import write_atomic  # the one atomic writer: 0600 from creation, fsynced, renamed

    write_atomic(path, raw, mode=0o600)
    return True, "accepted", path


def serve(host: str, port: int, spool: str, max_messages: int | None = None,
          ready: "asyncio.Event | None" = None) -> int:
    """Listen until interrupted (or ``max_messages`` accepted); returns the number accepted."""
    return asyncio.run(_serve(host, port, spool, max_messages, ready))


async def _serve(host: str, port: int, spool: str, max_messages: int | None, ready: "asyncio.Event | None") -> int:
    import hl7.mllp

    accepted = 0
    done = asyncio.Event()

    async def on_client(reader: hl7.mllp.HL7StreamReader, writer: hl7.mllp.HL7StreamWriter) -> None:
        nonlocal accepted
        try:
            while not reader.at_eof():
                try:
                    message = await reader.readmessage()
                except (asyncio.IncompleteReadError, hl7.mllp.InvalidBlockError):
                    break
                raw = str(message).encode("utf-8")
                ok, reason, _ = handle(raw, spool)
                ack = message.create_ack("AA" if ok else "AE")
                if not ok:
                    ack.assign_field(ack.escape(reason[:80]), "MSA", 1, 3)
                writer.writemessage(ack)
                await writer.drain()
                if ok:
                    accepted += 1
                    if max_messages is not None and accepted >= max_messages:
                        done.set()
                        break
        finally:
            writer.close()

    server = await hl7.mllp.start_hl7_server(on_client, host=host, port=port)
    if ready is not None:
        ready.set()
    async with server:
        if max_messages is None:
            await server.serve_forever()
        else:
            await done.wait()
    return accepted
