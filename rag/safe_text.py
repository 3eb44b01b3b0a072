"""Text that is safe to print to a terminal, and URLs that are safe to show.

Titles come from files anyone may have written (a Markdown heading, a BibTeX title) and answers
from a model that repeats what it read, so either can carry terminal escape sequences: an OSC that
renames the window, a CSI that clears the screen or recolours everything after it. `clean` removes
them, and every other control character except newline and tab, before text reaches the terminal.
JSON output keeps the original text; `json.dumps` escapes control characters itself.

`redact_url` hides the `user:password@` part of a URL (and `redact_urls` of every URL in a
message), so credentials given in `--llm-url` / `--chroma-url` are never printed.

Standard library only: the CLI imports this before anything heavy.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

# Whole escape sequences first, so their parameters ("]0;title", "[2J") go with the ESC.
_SEQUENCE = re.compile(
    r"""
      \x1b\[[0-?]*[\x20-/]*[@-~]?          # CSI ... final byte (ESC [ 2 J, ESC [ 31 m)
    | \x9b[0-?]*[\x20-/]*[@-~]?            # the same with the 8-bit CSI
    | \x1b\][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?   # OSC ... BEL or ST (window title, hyperlinks)
    | \x9d[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?     # the same with the 8-bit OSC
    | \x1b[PX^_][^\x1b\x9c]*(?:\x1b\\|\x9c)?        # DCS, SOS, PM, APC ... ST
    | [\x90\x98\x9e\x9f][^\x1b\x9c]*(?:\x1b\\|\x9c)?  # the same with 8-bit introducers
    | \x1b[\x20-/]*[0-~]?                  # any other ESC sequence (ESC c resets the terminal)
    """,
    re.VERBOSE,
)
# C0 controls but newline and tab, DEL, C1 controls; and the bidirectional overrides that make
# text display in another order than it reads (U+202A..U+202E, U+2066..U+2069).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_ONE_LINE = re.compile(r"[\n\t]+")


def clean(text: str) -> str:
    """`text` without escape sequences or control characters, newlines and tabs kept.

    Safe on pieces of a stream too: each piece loses its ESC, so a sequence split across two
    pieces can never form on the terminal (what is left of it prints as plain characters)."""
    if not text:
        return text
    return _CONTROL.sub("", _SEQUENCE.sub("", str(text)))


def clean_line(text: str) -> str:
    """`clean`, and newlines/tabs become single spaces: for a title or a path printed on one line."""
    return _ONE_LINE.sub(" ", clean(text))


def redact_url(url: str) -> str:
    """`http://user:secret@host:8000/v1` -> `http://***@host:8000/v1`; any other URL as given."""
    if not url or "@" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return _USERINFO.sub(r"\1***@", url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))


# scheme://userinfo@ anywhere in a message (an error text from a library that names the URL).
_USERINFO = re.compile(r"([a-zA-Z][a-zA-Z0-9+.\-]*://)[^\s/?#]*@")


def redact_urls(text: str) -> str:
    """Every `scheme://user:password@` in `text` with its credentials replaced by `***`."""
    if not text or "@" not in text:
        return text
    return _USERINFO.sub(r"\1***@", text)
