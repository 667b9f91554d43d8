"""How much each neuron matters: pluggable criteria, each a score per neuron per group."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from dynhp_tf.groups import PruningGraph, layer_weight, neuron_norms
from dynhp_tf.halo import halo_importance


def l2_product(model, graph: PruningGraph, data=None) -> list[np.ndarray]:
    """||incoming weights||_2 * ||outgoing weights||_2.

    Under ReLU, scaling a neuron's incoming weights by a and its outgoing ones by 1/a leaves
    the network unchanged; this score is invariant to that, plain incoming norms are not.
    """
    return [np.sqrt(neuron_norms(model, g, "incoming")) * np.sqrt(neuron_norms(model, g, "outgoing"))
            for g in graph.groups]


def l1_incoming(model, graph: PruningGraph, data=None) -> list[np.ndarray]:
    """||incoming weights||_1 (Li et al. 2017 filter pruning)."""
    return [neuron_norms(model, g, "incoming", order=1) for g in graph.groups]


def taylor(model, graph: PruningGraph, data) -> list[np.ndarray]:
    """First-order Taylor estimate of the loss change when a neuron is removed (Molchanov 2017).

    For each batch, |sum over samples and positions of z * dL/dz| for the neuron's
    pre-activation z, computed exactly from parameter gradients: since z = W x + b,
    sum(z * dL/dz) = sum(W * dL/dW) + b * dL/db over the neuron's slices. Averaged over batches.
    """
    if data is None:
        raise ValueError("criterion: 'taylor' needs training data; feed fit with cb.batches(x, y)")
    # The weights that compute the pre-activation: producers' kernel columns and their biases.
    slices = [[(layer_weight(model, a.layer, a.attr), a.axis) for a in g.axes
               if a.role == "incoming" or (a.role == "channel" and a.layer in g.producers)] for g in graph.groups]
    variables = [v for group in slices for v, _ in group]
    totals = [np.zeros(g.size) for g in graph.groups]
    batches = 0
    for x, y in data:
        x, y = tf.convert_to_tensor(x), tf.convert_to_tensor(y)
        with tf.GradientTape() as tape:
            y_pred = model(x, training=False)
            loss = model.compute_loss(x=x, y=y, y_pred=y_pred)
        grads = iter(tape.gradient(loss, variables))
        for total, group in zip(totals, slices):
            contribution = np.zeros_like(total)
            for v, axis in group:
                wg = np.asarray(v) * np.asarray(next(grads))
                contribution += np.moveaxis(wg, axis, -1).reshape(-1, wg.shape[axis]).sum(axis=0)
            total += np.abs(contribution)
        batches += 1
    return [t / max(batches, 1) for t in totals]


# "halo" reads the neuron-level HALO scales that DynHPCallback(criterion="halo") trains (dynhp_tf.halo).
CRITERIA = {"l2_product": l2_product, "l1_incoming": l1_incoming, "taylor": taylor, "halo": halo_importance}
