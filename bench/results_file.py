"""bench/RESULTS.md sections: each benchmark replaces only its own, between markers."""
from __future__ import annotations

import datetime
import re
import sys
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


def section_head(begin: str, title: str) -> list[str]:
    """The first lines of a section: its marker, a dated heading, and the
    command line that produced it (this script with its arguments)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    command = " ".join([".venv/bin/python", f"bench/{Path(sys.argv[0]).name}", *sys.argv[1:]])
    return [begin, "", f"### {title}, {now:%Y-%m-%d %H:%M} UTC", "", f"Command: `{command}`", ""]
