"""MkDocs hook: Sphinx cross-reference roles in docstrings, shown as plain code on the API page.

The docstrings use reStructuredText roles (:class:`~volume.Volume`, :func:`scan`), which
mkdocstrings renders literally (``:class:<code>~volume.Volume</code>``). This drops the role and,
as Sphinx does for a leading ``~``, keeps only the last part of the dotted name.
"""

from __future__ import annotations

import re

_ROLE = re.compile(r":(?:class|func|data|mod|meth|attr|exc|obj):<code>(~?)([^<]*)</code>")


def _plain(match: re.Match[str]) -> str:
    tilde, name = match.groups()
    return f"<code>{name.rsplit('.', 1)[-1] if tilde else name}</code>"


def on_page_content(html: str, **_: object) -> str:
    return _ROLE.sub(_plain, html)
