"""Making untrusted text safe to show in a terminal.

Text from a model, a tool or a web page may carry terminal control sequences: a new window
title, a cleared screen, a hyperlink pointing somewhere else than it says (OSC 8), cursor moves
that overwrite what was shown. Printed as they are, the terminal obeys them. `safe_text` removes
them and keeps the visible text.
"""

from __future__ import annotations

import re

__all__ = ["safe_text"]

# Any C0 control but \t and \n, DEL, and any C1 control: the fast test for the common case.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SEQUENCE = re.compile(
    # OSC, DCS, SOS, PM, APC (7-bit ESC form or 8-bit C1 form): up to the string terminator
    # (ST, or BEL for OSC), or to the end of the text when it never comes.
    r"(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f]).*?(?:\x07|\x1b\\|\x9c|\Z)"
    # CSI (ESC [ or 0x9b): parameters, intermediates, one final byte.
    r"|(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    # Any other escape sequence: ESC, intermediates, one final byte.
    r"|\x1b[ -/]*[0-~]?",
    re.DOTALL,
)


def safe_text(text: str) -> str:
    """Return ``text`` without terminal control sequences (CSI, OSC, DCS, ...) and without C0
    and C1 control characters other than newline and tab; other text is kept as it is."""
    if _CONTROL.search(text) is None:
        return text
    return _CONTROL.sub("", _SEQUENCE.sub("", text))
