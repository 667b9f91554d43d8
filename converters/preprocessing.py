"""What became of the model's preprocessing layers (Normalization, Rescaling) in the int8 model.

Keras guides put the input scaling inside the model, so the exported model must do it too:
either the converter keeps it as int8 element-wise ops on the input (an adapted
Normalization becomes SUB and MUL), or it folds the constant into the layer that follows,
and the int8 input is then quantized in the raw input range (a Rescaling before a Dense has
no op of its own). Either way the device takes the same raw inputs as the Keras model; the
report says which of the two happened, read from the flatbuffer rather than assumed.

Example:
    >>> preprocessing_fate(compact_model, tflite_model)
    {'layers': ['rescaling'], 'kept': False, 'ops': [], 'input_scale': 1.0, 'statement': ...}
"""
from __future__ import annotations

from dynhp_tf.converters.flatbuffer import input_ops
from dynhp_tf.layers import rule_for

# Ops a per-element preprocessing layer turns into.
ELEMENTWISE = frozenset({"ADD", "SUB", "MUL", "DIV", "RSQRT", "SQRT"})


def preprocessing_layers(model) -> list[str]:
    """Names of the model's layers of kind "preprocess" (`dynhp_tf.layers`), in order."""
    return [layer.name for layer in model.layers
            if (rule := rule_for(type(layer).__name__)) is not None and rule.kind == "preprocess"]


def preprocessing_fate(model, tflite_model: bytes) -> dict | None:
    """Whether the preprocessing layers of `model` are kept in `tflite_model` or folded.

    Returns None when the model has no preprocessing layer, else a JSON-ready dict:
    `layers` (names), `kept` (True when element-wise ops act on the input in the int8
    model), `ops` (those ops), `input_scale` (of the flatbuffer's input tensor) and
    `statement` (one sentence for the report).
    """
    layers = preprocessing_layers(model)
    if not layers:
        return None
    ops, scale = input_ops(tflite_model, ELEMENTWISE)
    scale_text = "n/a" if scale is None else f"{scale:.6g}"
    statement = (
        f"preprocessing ({', '.join(layers)}) kept in the int8 model as {', '.join(ops)} on the "
        f"input (input scale {scale_text})"
        if ops else
        f"preprocessing ({', '.join(layers)}) folded by the converter into the following layer "
        f"and the input quantization: no op of its own, the int8 input takes raw values "
        f"(input scale {scale_text})"
    )
    return {"layers": layers, "kept": bool(ops), "ops": ops, "input_scale": scale,
            "statement": statement}
