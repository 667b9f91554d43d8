"""Compact rebuild: the physically smaller dense Keras model without the removable neurons.

TFLM has no sparse kernels, so zeros cost as much as any weight on the device; only a model
whose layers are narrower saves flash, RAM and time. A neuron is removable when its outgoing
weights are all exactly zero, or when its incoming kernel is all zero and its channel is
exactly zero where the next layers read it (the activation and any BatchNorm map it to 0).
This works for any Keras model the pruning groups support, trained with DynHP or not.
"""
from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np

from dynhp_tf._keras import keras
from dynhp_tf.groups import (PRODUCERS, PruningGraph, as_list, neuron_norms, pruning_groups, slice_weight,
                             zero_outgoing)

WIDTH_KEYS = {"Dense": "units", "Conv1D": "filters", "Conv2D": "filters"}
TOLERANCE = 1e-5


class RebuildMismatchError(RuntimeError):
    """The compact model's outputs differ from the original's beyond TOLERANCE."""


@dataclasses.dataclass
class CompactModel:
    model: object
    widths: dict[str, tuple[int, int]]
    params_dense: int
    params_compact: int
    macs_dense: int
    macs_compact: int
    max_abs_difference: float


def count_macs(model) -> int:
    """Multiply-accumulates per inference of Dense, Conv and DepthwiseConv2D layers."""
    total = 0
    for layer in model.layers:
        cls = type(layer).__name__
        if cls in PRODUCERS or cls == "DepthwiseConv2D":
            kernel = getattr(layer, "depthwise_kernel", None)
            kernel = layer.kernel if kernel is None else kernel
            positions = math.prod(int(d) for d in layer.output.shape[1:-1])
            total += math.prod(kernel.shape) * positions
    return total


def _probe_inputs(model, count=8, seed=0):
    """Random inputs in the structure the model expects (one array, or a list of them)."""
    rng = np.random.default_rng(seed)
    return _single([rng.normal(size=(count,) + tuple(int(d) for d in t.shape[1:])).astype("float32")
                    for t in model.inputs])


def _single(xs: list):
    """One input as itself, several as a list: the structure a Keras model expects."""
    return xs[0] if len(xs) == 1 else xs


def _zero_at_consumers(model, graph: PruningGraph, candidates: list[np.ndarray]) -> list[np.ndarray]:
    """Among candidate neurons, those whose channel is exactly 0 at every consumer's input.

    With a zero incoming kernel a channel is the same constant for every input, so one probe
    batch decides it exactly.
    """
    consumers = sorted({a.layer for g in graph.groups for a in g.axes_with_role("in")})
    if not consumers or not any(c.any() for c in candidates):
        return candidates
    probe = keras.Model(_single(model.inputs), [model.get_layer(name).input for name in consumers])
    values = dict(zip(consumers, [np.asarray(v) for v in as_list(probe(_probe_inputs(model), training=False))]))
    result = []
    for group, candidate in zip(graph.groups, candidates):
        zero = candidate.copy()
        for a in group.axes_with_role("in"):
            v = values[a.layer]
            zero &= np.all(v.reshape(len(v), -1, group.size) == 0, axis=(0, 1))
        result.append(zero)
    return result


def removable_neurons(model, graph: PruningGraph) -> list[np.ndarray]:
    """Per group, True for neurons that can be removed without changing the model's outputs."""
    outgoing = zero_outgoing(model, graph)
    incoming = [neuron_norms(model, g, "out", 1) == 0 for g in graph.groups]
    incoming = _zero_at_consumers(model, graph, incoming)
    return [o | i for o, i in zip(outgoing, incoming)]


def _set_widths(config: dict, widths: dict[str, int]) -> dict:
    for entry in config["layers"]:
        entry.pop("build_config", None)  # Keras 3 would build each layer at its old width
        layer_config = entry["config"]
        if layer_config.get("name") in widths:
            layer_config[WIDTH_KEYS[entry["class_name"]]] = widths[layer_config["name"]]
    return config


def compact_model(model, tolerance: float = TOLERANCE) -> CompactModel:
    """Builds the physically smaller model and checks its outputs equal the original's.

    Raises:
        UnsupportedLayerError: a layer the pruning groups cannot model (named, with class).
        RebuildMismatchError: outputs differ by more than `tolerance` on random inputs.
    """
    graph = pruning_groups(model)
    keep = [~r for r in removable_neurons(model, graph)]
    for k in keep:
        if not k.any():  # a layer cannot be empty: its one remaining neuron contributes 0
            k[0] = True
    widths = {p: (g.size, int(k.sum())) for g, k in zip(graph.groups, keep) for p in g.producers}
    config = _set_widths(model.get_config(), {name: kept for name, (_, kept) in widths.items()})
    compact = type(model).from_config(config)
    for name, infos in itertools.groupby(graph.weights, key=lambda w: w.layer):
        originals = model.get_layer(name).weights
        compact.get_layer(name).set_weights(
            [slice_weight(np.asarray(v), info.pruned_axes, keep) for v, info in zip(originals, infos)])

    inputs = _probe_inputs(model, count=16, seed=1)
    expected = [np.asarray(t) for t in as_list(model(inputs, training=False))]
    actual = [np.asarray(t) for t in as_list(compact(inputs, training=False))]
    difference = max(float(np.max(np.abs(e - a))) for e, a in zip(expected, actual))
    if difference > tolerance:
        raise RebuildMismatchError(f"compact model differs from the original by {difference:.3g} (> {tolerance:g})")
    return CompactModel(compact, widths, graph.params(), graph.params([int(k.sum()) for k in keep]),
                        count_macs(model), count_macs(compact), difference)
