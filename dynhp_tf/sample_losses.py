"""Per-sample losses from the train step that runs, so labelling samples costs no second forward.

A method that learns from the main network's loss on each sample (the instance filter's labels)
needs the per-sample losses of the batch the main network just trained on. Keras's train step
returns only the batch's mean loss and metrics, and a separate inference forward for the
per-sample values costs a third of the step's FLOPs. Instead `attach` wraps two methods of one
network instance, the same on Keras 3 and tf_keras (both call `compute_loss(x, y, y_pred,
sample_weight, ...)` from `train_step`):

- `compute_loss` also computes the per-sample losses from the `y` and `y_pred` it is given (the
  training forward, before the update: dropout and batch statistics as in the step), and
- `train_step` adds them to its logs under `KEY`.

Everything else (metrics, optimizer, loss scaling, DynHP's narrow copies, which are compiled
Keras models too) runs as before. The network's train function must be made after `attach`
(Keras 3 binds `train_step` when the function is made): see `StepDriver.remake_own_step`. The
caller pops `KEY` from the logs before Keras sees them.
"""
from __future__ import annotations

import tensorflow as tf

KEY = "dynhp/sample_losses"


def attach(network, per_sample) -> bool:
    """Makes `network`'s train step return `per_sample(y, y_pred)` (one value per row) under `KEY`.

    Returns False if it was attached already (then nothing changes), True if the network's
    train function must be made afresh.

    Args:
        network: a compiled Keras model.
        per_sample: the loss without reduction, `(y_true, y_pred) -> losses` with a leading
            batch axis (further axes are averaged).

    Example:
        >>> if attach(model, keras.losses.get("mse")):
        ...     model.make_train_function(force=True)
        >>> logs = model.train_function(iterator); losses = logs.pop(KEY)
    """
    if "_sample_losses" in vars(network):
        return False
    train_step, compute_loss = network.train_step, network.compute_loss
    traced = []  # the per-sample losses of the forward being traced (Python runs at trace time only)

    def compute_loss_too(x=None, y=None, y_pred=None, *args, **kwargs):
        value = per_sample(y, y_pred)
        traced.append(tf.reduce_mean(tf.reshape(value, [tf.shape(value)[0], -1]), axis=1))
        return compute_loss(x, y, y_pred, *args, **kwargs)

    def train_step_too(data):
        traced.clear()
        logs = train_step(data)
        if not traced:
            raise ValueError(f"model: {type(network).__name__}.train_step does not call compute_loss(x, y, y_pred, "
                             "...), so the per-sample losses of its batch are not available (Keras's own does)")
        return {**logs, KEY: traced[0]}  # the first call is the step's own forward

    # Plain functions as instance attributes: Keras's attribute tracking leaves them alone.
    network.compute_loss, network.train_step = compute_loss_too, train_step_too
    network._sample_losses = True
    return True


def detach(network) -> None:
    """Undoes `attach`: the network's own methods again (for train functions made after this)."""
    if "_sample_losses" not in vars(network):
        return
    for name in ("compute_loss", "train_step", "_sample_losses"):
        delattr(network, name)
