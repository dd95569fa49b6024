"""MkDocs hook: show the docstrings' Sphinx roles (``:class:`~a.B```) as plain code.

The package's docstrings are written for ``help()`` and Sphinx; Markdown would print
the role names and reST's ``::`` literally.
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:class|meth|func|attr|mod|exc|data|obj):<code>(.*?)</code>")
_TITLED = re.compile(r"^(.*?)\s*&lt;.*&gt;$")


def _name(match: re.Match[str]) -> str:
    target = match.group(1)
    titled = _TITLED.match(target)
    if titled:
        target = titled.group(1)
    elif target.startswith("~"):
        target = target.rsplit(".", 1)[-1]
    return f"<code>{target}</code>"


def on_page_content(html: str, **_: Any) -> str:
    """The page's HTML with roles reduced to code and reST's ``::`` to one colon."""
    return _ROLE.sub(_name, html).replace("::</p>", ":</p>")
