"""Errors the exporter raises for bad input or a model that cannot be deployed.

Each is a distinct class so the CLI can map it to its own exit code (see `converters.cli`).
"""

from __future__ import annotations


class ExportError(Exception):
    """Base class: an export that cannot proceed, with a one-line message for the user."""


class ModelFileNotFoundError(ExportError):
    """An input file (model, calibration or eval data) does not exist."""


class NotAKerasModelError(ExportError):
    """The file exists but is not a saved Keras model."""


class CorruptedModelError(ExportError):
    """The file looks like a saved Keras model but cannot be read."""


class MissingCalibrationError(ExportError):
    """No calibration data: neither `--calibration` nor a sidecar next to the model."""


class CalibrationShapeError(ExportError):
    """Calibration or eval data whose sample shape differs from the model's input."""


class QuantizationCheckError(ExportError):
    """The flatbuffer does not have the quantization the board asked for."""


class TFLMCheckError(ExportError):
    """The model does not run under the TFLM kernels on the host."""


class OutputExistsError(ExportError):
    """The output directory exists and `force` was not given."""


class RebuildMismatchError(ExportError):
    """The compact model's outputs differ from the original's beyond float32 rounding."""
