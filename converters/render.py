"""The text of every generated file comes from a template file shipped with the package.

A template (`converters/templates/*.tmpl`, installed as `dynhp_tf/converters/templates`) is
the file as it will be written, with `{{name}}` where a value goes, so the C, C++, INI and
Markdown read as themselves rather than as Python strings. Only `{{word}}` is special: C
braces and Makefile `$(...)` pass through untouched. Values are inserted as `str(value)`;
whatever varies beyond a value (optional lines, lists) the caller renders into one.

Example:
    >>> render("model_data.h.tmpl")
    >>> render("idf_component.yml.tmpl", idf_version=">=5.0", library="...", library_version="~1.3.7")
"""
from __future__ import annotations

import functools
import importlib.resources
import re

PACKAGE = "dynhp_tf.converters"
FOLDER = "templates"
PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


@functools.lru_cache(maxsize=None)
def template(name: str) -> str:
    """The text of template `name` (e.g. "platformio.ini.tmpl") from the installed package."""
    return importlib.resources.files(PACKAGE).joinpath(FOLDER, name).read_text(encoding="utf-8")


def render(name: str, **values) -> str:
    """Template `name` with each `{{key}}` replaced by `str(values[key])`.

    Raises:
        KeyError: a placeholder without a value, or a value without a placeholder (a
            template and its caller that disagree; never a user's input).
    """
    text = template(name)
    wanted = set(PLACEHOLDER.findall(text))
    if wanted != set(values):
        raise KeyError(f"template {name}: missing values {sorted(wanted - set(values))}, "
                       f"unused values {sorted(set(values) - wanted)}")
    return PLACEHOLDER.sub(lambda match: str(values[match.group(1)]), text)
