"""Sections of docs/benchmarks.md that other benchmarks own.

`benchmarks.compare` regenerates docs/benchmarks.md from its own results; a benchmark with
results of another kind (e.g. `benchmarks.c_runtime`) writes its text between two marker
comments, and the regeneration carries every such block over unchanged.

Example:
    >>> replace_section(pathlib.Path("docs/benchmarks.md"), "c_runtime", "## C runtime\\n...")
"""
from __future__ import annotations

import pathlib
import re

_BLOCK = re.compile(r"<!-- section:(\w+) -->\n.*?<!-- /section:\1 -->\n", re.S)


def owned_sections(text: str) -> str:
    """Every marked block of `text`, concatenated in order ("" when none)."""
    return "".join(m.group(0) for m in _BLOCK.finditer(text))


def replace_section(path: pathlib.Path, name: str, body: str) -> None:
    """Put `body` into `path` as the block `name`: replaced in place if present, else appended."""
    block = f"<!-- section:{name} -->\n{body.rstrip()}\n<!-- /section:{name} -->\n"
    text = path.read_text() if path.exists() else ""
    pattern = re.compile(rf"<!-- section:{name} -->\n.*?<!-- /section:{name} -->\n", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block
    path.write_text(text)
