"""Report-derived text shown by the app is text, never markup.

Reports, flag quotes and explanations come from outside (a report can be written by anyone who
can put a file in the audited folder). Rendered as Markdown, ``![x](https://host/beacon.png)``
loads a remote image (a tracking beacon carrying the app's URL) and ``[text](url)`` becomes a
clickable link. :func:`md_escape` makes such text inert for ``st.markdown``/``st.caption``;
:func:`inert_html` does the same for the text nodes of HTML the app renders with
``unsafe_allow_html`` (the highlighted report), after :func:`medmm.app.views.highlight` has
escaped HTML itself.
"""

from __future__ import annotations

import re

# Markdown (and Streamlit's :directive[...] / :emoji: / $math$) syntax characters
_MD_SPECIAL = set("\\`*_{}[]()<>#+-.!|~$:=&^\"'")
_ENTITY_SPECIAL = {c: f"&#{ord(c)};" for c in "[]()!*_`~$|:\\{}^="}
_TAG_OR_ENTITY = re.compile(r"(<[^<>]*>|&#?[A-Za-z0-9]+;)")
_ATTR = re.compile(r'"([^"]*)"')


def md_escape(text: str) -> str:
    """``text`` with every Markdown syntax character backslash-escaped (one line: newlines become spaces)."""
    return "".join("\\" + c if c in _MD_SPECIAL else c for c in " ".join(str(text).split()))


def _entities(text: str) -> str:
    return "".join(_ENTITY_SPECIAL.get(c, c) for c in text)


def inert_html(html: str) -> str:
    """HTML that cannot form Markdown: syntax characters in text nodes and quoted attribute values
    become character references (the browser shows the same characters)."""
    parts = _TAG_OR_ENTITY.split(html)
    out = []
    for i, part in enumerate(parts):
        if i % 2 == 0:
            out.append(_entities(part))
        elif part.startswith("<"):  # a tag: its quoted attribute values
            out.append(_ATTR.sub(lambda m: '"' + _entities(m.group(1)) + '"', part))
        else:  # an existing entity
            out.append(part)
    return "".join(out)
