"""Named sections of a generated markdown file that other benchmarks own.

`benchmarks.report` rewrites docs/benchmarks.md as a whole; a benchmark that adds its own section
(e.g. `benchmarks.lowrank`) wraps it in markers, and the report keeps every marked section.

Example:
    >>> replace_section(pathlib.Path("docs/benchmarks.md"), "lowrank", "## Low-rank ...\\n")
"""
from __future__ import annotations

import pathlib
import re

_SECTION = re.compile(r"<!-- section:(\w+) -->\n.*?<!-- /section:\1 -->\n", re.S)


def kept_sections(text: str) -> str:
    """Every marked section of `text`, in order, as one string."""
    return "".join(match.group(0) for match in _SECTION.finditer(text))


def replace_section(path: pathlib.Path, name: str, body: str) -> None:
    """Put `body` as section `name` of the file at `path` (replacing it, else appending it)."""
    text = path.read_text() if path.exists() else ""
    section = f"<!-- section:{name} -->\n{body.rstrip()}\n<!-- /section:{name} -->\n"
    kept = [m for m in _SECTION.finditer(text) if m.group(1) == name]
    if kept:
        text = text[:kept[0].start()] + section + text[kept[0].end():]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
