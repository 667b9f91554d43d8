"""int8 ranges of the hidden activations that leave out their rarest extremes.

The converter gives every activation tensor 256 steps between the smallest and largest value
seen in calibration. A ReLU layer's largest output is one rare sample's outlier (on the demo's
10x LeNet-300-100, 17-34 against a 99.9th percentile of 13-28), so one step is up to 1.3x wider
than the bulk of the values needs, every sample pays for it in rounding, and the rounded hidden
layers move near-tied logits past each other. `clipped_range` gives a Dense/Conv output the range
between the 0.1st and 99.9th percentiles of its values (all units and samples pooled), widened to
hold 0: the few values beyond it saturate at the range's end.

One rule for both sides of the pipeline: the int8 fine-tuning's fake quantization uses it
(`dynhp_tf.int8_finetune`), and the exporter writes it into the calibrated model before the
converter quantizes it (`dynhp_tf.converters.hidden_ranges`). Measured in docs/benchmarks.md,
section "int8 agreement: clipped hidden ranges".

Example:
    >>> clipped_range(np.arange(1001.0))      # (0.0, 999.0): the top value saturates
"""
from __future__ import annotations

import numpy as np

PERCENTILE = 99.9


def clipped_range(values, percentile: float | None = PERCENTILE) -> tuple[float, float]:
    """(100 - percentile, percentile) percentiles of `values`, widened to hold 0.

    Args:
        values: The activations of one tensor on the calibration samples (any shape).
        percentile: None for the plain (min, max), the converter's own rule.
    """
    values = np.asarray(values, np.float64)
    if percentile is None:
        low, high = values.min(), values.max()
    else:
        low, high = np.percentile(values, [100 - percentile, percentile])
    return min(float(low), 0.0), max(float(high), 0.0)
