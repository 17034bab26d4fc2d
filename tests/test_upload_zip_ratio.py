"""The zip ratio is enforced for every member, not only members over 1 MiB (issue 20, N13): many
members just under 1 MiB each, compressed ~1000:1, expanded to the whole allowance before."""

from __future__ import annotations

import io
import os
import zipfile

import pytest

from medmm.app.uploads import UploadLimits, save_upload
from medmm.errors import InputError


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_members_under_one_mib_compressed_beyond_the_ratio_are_refused(tmp_path):
    members = {f"{i}.dcm": b"\0" * ((1 << 20) - 1) for i in range(8)}  # each 1 MiB - 1, ~1000:1
    data = _zip(members)
    assert len(data) < 16 * 1024
    with pytest.raises(InputError, match="zip bomb"):
        save_upload(data, "series.zip", str(tmp_path / "root"))
    assert not os.listdir(tmp_path / "root" / "pending")  # nothing left behind


def test_ordinary_small_members_are_accepted(tmp_path):
    members = {f"{i}.dcm": os.urandom(2048) + b"\0" * 4096 for i in range(5)}
    upload = save_upload(_zip(members), "series.zip", str(tmp_path / "root"), UploadLimits())
    assert sorted(os.listdir(upload.images[0])) == sorted(members)
