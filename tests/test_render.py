"""Generated files come from the shipped templates: every template is used, and a template
and its caller that disagree on the values fail loudly instead of writing a wrong file."""
import pathlib
import re

import pytest

from dynhp_tf.converters.render import render

CONVERTERS = pathlib.Path(__file__).resolve().parents[1] / "converters"


def test_only_double_braced_words_are_replaced():
    text = render("model_ops.h.tmpl", model_name="m", op_count=1, ops="SOFTMAX",
                  registrations="  if (resolver.AddSoftmax() != kTfLiteOk) return kTfLiteError;")
    assert "RegisterModelOps(ModelOpResolver& resolver) {\n  if (resolver.AddSoftmax()" in text
    assert "#define DYNHP_MODEL_OP_COUNT 1\n" in text and "{{" not in text


def test_missing_or_unused_values_are_refused():
    with pytest.raises(KeyError, match="missing values \\['ops'\\]"):
        render("model_ops.h.tmpl", model_name="m", op_count=1, registrations="")
    with pytest.raises(KeyError, match="unused values \\['extra'\\]"):
        render("model_data.h.tmpl", extra=1)


def test_every_shipped_template_is_rendered_by_a_generator():
    sources = "\n".join(p.read_text() for p in CONVERTERS.glob("*.py"))
    used = set(re.findall(r'render\(\s*"([\w.]+\.tmpl)"', sources))
    shipped = {p.name for p in (CONVERTERS / "templates").glob("*.tmpl")}
    assert used == shipped
