"""User text made safe to show: the one list of characters that may not reach a terminal or a one-line message
raw (C0 and C1 controls, so ESC and every terminal escape sequence, DEL, line separators, bidirectional
overrides). numpy- and pandas-free, so the command line can use it before anything heavy is imported."""

from __future__ import annotations

import re

CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\r": "\\r", "\n": "\\n", "\t": "\\t"}


def escape_controls(text: str, keep: str = "", named: bool = False) -> str:
    """`text` with each such character written as a visible escape (\\x1b, \\u202e), except those in `keep`;
    with `named`, CR, LF and tab as \\r, \\n, \\t."""
    def shown(found: re.Match) -> str:
        c = found[0]
        if c in keep:
            return c
        if named and c in _NAMED:
            return _NAMED[c]
        return f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}"

    return CONTROLS.sub(shown, text)
