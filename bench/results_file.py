"""bench/RESULTS.md sections: each benchmark replaces only its own, between markers."""
from __future__ import annotations

import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def replace_section(begin: str, end: str, lines: list[str]) -> Path:
    """Put `lines` (which start with `begin` and end with `end`) in RESULTS.md,
    replacing the previous section between the same markers or appending it."""
    text = RESULTS.read_text()
    block = "\n".join(lines)
    if begin in text and end in text:
        text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(text)
    return RESULTS
