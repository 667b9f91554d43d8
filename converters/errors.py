"""Errors the exporter raises for bad input or a model that cannot be deployed.

Every exception that `dynhp-export` maps to an exit code lives here, one distinct class per
code (see `dynhp_tf.converters.cli.EXIT_CODES`), all subclasses of `ExportError`. The one
exception is `dynhp_tf.groups.UnsupportedLayerError` (exit 6): the training side raises it
too, and the training side never imports the deploy side.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # fit.py imports this module
    from dynhp_tf.converters.fit import FitReport


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


class DoesNotFitError(ExportError):
    """The model is too large for the board; `report` has the numbers."""

    def __init__(self, report: FitReport, hint: str | None = None):
        self.report = report
        over = [
            f"{row.resource} {row.used:,} > {row.limit:,} bytes"
            for row in report.rows if not row.fits
        ]
        need = report.compression_to_fit
        if hint is not None:  # the estimator's suggestion (dynhp_tf.converters.export)
            hint = "; " + hint
        elif need is not None and math.isfinite(need):
            hint = f"; about {need:.1f}x compression would fit (now {report.compression:.1f}x)"
        else:
            hint = "; no compression can fit: the bare firmware alone exceeds the board"
        super().__init__(f"model does not fit {report.board}: {', '.join(over)}{hint}")


class FirmwareError(ExportError, ValueError):
    """The firmware project cannot be generated for this model or board."""


class UnknownBoardError(ExportError, ValueError):
    """The requested board has no profile; `known` lists the ones that exist."""

    def __init__(self, name: str, known: list[str]):
        self.name = name
        self.known = known
        super().__init__(f"unknown board '{name}'; known boards: {', '.join(known)}")


class ToolchainMissingError(ExportError):
    """The cross compiler, newlib or QEMU is not installed."""


class EmulationError(ExportError):
    """The build failed, QEMU failed or timed out, or the firmware said nothing usable."""


class UnsupportedOpError(ExportError):
    """The C runtime has no kernel for an op (or an op variant) of the model."""
