"""Errors the exporter raises for bad input or a model that cannot be deployed.

Each is a distinct class so the CLI can map it to its own exit code (see `dynhp_tf.converters.cli`).
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


class CalibrationValueError(ExportError):
    """Calibration or eval data with unusable values: NaN/inf, an integer or other non-float
    dtype, values outside the training inputs' range, or labels that are not class indices."""


class OutputNotWritableError(ExportError):
    """The output directory cannot be created or written."""


class NonFiniteWeightsError(ExportError):
    """A layer of the model has NaN or infinite weights (training diverged?)."""


class ConversionError(ExportError):
    """The TFLite converter failed or crashed (it runs in a child process)."""


class AgreementError(ExportError):
    """The int8 model's top-1 agreement with the float model is below the threshold."""


class WrongFrameworkError(ExportError):
    """The model file was saved by the other Keras (tf_keras vs Keras 3) and cannot be
    loaded by this one."""
