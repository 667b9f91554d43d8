"""Level the top logit: a shift softmax cannot see that makes the logits' int8 steps finer.

Softmax and argmax do not change when one number is added to every logit of a sample. The
exporter gives the logits an int8 range from the smallest top logit of a calibration sample
minus ln(256 (n - 1)) to the largest top logit (`converters/logit_range.py`), so how far the top
logit wanders from sample to sample sets the size of every int8 step, and float near-ties closer
than a step become int8 ties. Subtracting from every logit the same linear function of the last
hidden layer, fitted by least squares to each sample's top logit, leaves the float model's
softmax as it was (up to float rounding) and narrows that range (logit step 0.11-0.12 -> 0.08
on the demo model).

Done once before the int8 fine-tuning (`narrow_logit_range(level_logits=True)`, which the
callback's `int8_finetune_epochs` runs), so the fine-tuning adapts the shifted weights to their
int8 grid; on its own at export time, after such a fine-tuning, it bought little (the shifted
weights leave the grid the fine-tuning put them on). Measured in docs/benchmarks.md, section
"int8 agreement: levelling the top logit".

Example:
    >>> level_top_logit(model, x_calibration)      # model's softmax outputs unchanged
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from dynhp_tf._keras import keras


def logits_function(model):
    """`x -> logits` for a model whose last layer is a Dense with softmax or no activation.

    Raises ValueError naming the model otherwise.
    """
    last = model.layers[-1]
    activation = getattr(getattr(last, "activation", None), "__name__", None)
    if not isinstance(last, keras.layers.Dense) or activation not in ("softmax", "linear") or not last.use_bias:
        raise ValueError(f"model '{model.name}': the last layer must be a Dense with a bias and softmax or "
                         f"linear activation (the logits); got {type(last).__name__} ({activation})")
    body = keras.Model(model.inputs, model.layers[-2].output)
    return lambda x, training=False: tf.matmul(body(x, training=training), last.kernel) + last.bias


def level_top_logit(model, samples) -> dict:
    """Shifts the logits of `model` (in place) so that each sample's largest one is about constant.

    Args:
        model: A classifier whose last layer is a Dense with a bias and softmax or linear
            activation (`logits_function` checks it); the fit is on
            that layer's own input.
        samples: Inputs the fit is made on (the calibration samples).

    Returns:
        {"top_spread_before", "top_spread_after"}: max - min of the samples' top logit.
    """
    logits = logits_function(model)  # refuses a model without logits
    last = model.layers[-1]
    hidden = np.asarray(keras.Model(model.inputs, last.input)(samples), np.float64)
    top = np.asarray(logits(samples), np.float64).max(axis=1)
    kernel, bias = (np.asarray(w) for w in last.get_weights())
    # Only units that carry something take part: a pruned unit (no outgoing weights) keeps its
    # zero row even when its output is a nonzero constant (sigmoid(0)), and a unit that never
    # fires here has nothing to fit.
    live = np.any(kernel != 0, axis=1) & np.any(hidden != 0, axis=0)
    features = np.concatenate([hidden[:, live], np.ones((len(hidden), 1))], axis=1)
    coef = np.linalg.lstsq(features, top, rcond=None)[0]
    shift = np.zeros(len(kernel))
    shift[live] = coef[:-1]
    last.set_weights([kernel - shift[:, None].astype(kernel.dtype), bias - bias.dtype.type(coef[-1])])
    after = np.asarray(logits(samples), np.float64).max(axis=1)
    return {"top_spread_before": float(np.ptp(top)), "top_spread_after": float(np.ptp(after))}
