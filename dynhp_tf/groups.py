"""Pruning groups: the weight slices that live or die together with one neuron.

Removing output channel j of a Dense or Conv layer touches its kernel column and bias, the
BatchNormalization and DepthwiseConv2D entries that carry channel j onward, the kernel rows
of every layer that reads channel j (through Flatten, where one channel becomes H*W rows in
NHWC order), and every layer joined to it by Add. `pruning_groups(model)` walks the Keras
graph once and returns these groups as plain data; masking, importance, the memory model and
the compact rebuild all read them. Unsupported layers are refused here, and only here.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from dynhp_tf.layers import RULES, rule_for

class UnsupportedLayerError(ValueError):
    """A layer that pruning groups cannot model; the message names it and its class."""


@dataclasses.dataclass(frozen=True)
class WeightAxis:
    """One axis of one weight that indexes a group's neurons.

    `tile` > 1 when a Flatten spread each channel over `tile` rows: row = position * C + c.
    `role` is what the slice is to the neuron: "incoming" for its producer's kernel column
    (the weights that compute it), "outgoing" for a consumer's kernel rows (the weights that
    read it), "channel" for its per-channel parameters (bias, BatchNorm, depthwise).
    """

    layer: str
    attr: str
    axis: int
    role: str
    tile: int = 1


@dataclasses.dataclass(frozen=True)
class PruningGroup:
    """Neurons that are removed together; `size` of them, described by `axes`."""

    name: str
    size: int
    producers: tuple[str, ...]
    axes: tuple[WeightAxis, ...]

    def axes_with_role(self, role: str) -> tuple[WeightAxis, ...]:
        return tuple(a for a in self.axes if a.role == role)


@dataclasses.dataclass(frozen=True)
class WeightInfo:
    layer: str
    attr: str
    shape: tuple[int, ...]
    trainable: bool
    # (group index, axis, tile) for every axis that a group prunes.
    pruned_axes: tuple[tuple[int, int, int], ...]
    # Output positions each entry is multiplied at (0: the weight costs no MACs).
    positions: int = 0

    def kept_size(self, kept: list[int] | np.ndarray) -> int:
        shape = list(self.shape)
        for g, axis, tile in self.pruned_axes:
            shape[axis] = int(kept[g]) * tile
        return math.prod(shape)


@dataclasses.dataclass(frozen=True)
class Activation:
    """A layer output kept for the backward pass: `elements` per sample when dense."""

    layer: str
    elements: int
    group: int | None


@dataclasses.dataclass(frozen=True)
class PruningGraph:
    groups: tuple[PruningGroup, ...]
    weights: tuple[WeightInfo, ...]
    activations: tuple[Activation, ...]
    input_elements: int

    @property
    def sizes(self) -> list[int]:
        return [g.size for g in self.groups]

    def params(self, kept: list[int] | np.ndarray | None = None, trainable_only=False) -> int:
        """Parameters of the network with `kept[g]` neurons left in group g (default: all)."""
        kept = self.sizes if kept is None else kept
        return sum(w.kept_size(kept) for w in self.weights if w.trainable or not trainable_only)

    def macs(self, kept: list[int] | np.ndarray | None = None) -> int:
        """Multiply-accumulates per inference with `kept[g]` neurons left in group g."""
        kept = self.sizes if kept is None else kept
        return sum(w.kept_size(kept) * w.positions for w in self.weights)

    def activation_elements(self, kept: list[int] | np.ndarray | None = None) -> int:
        """Per-sample activation elements kept for the backward pass, input included."""
        kept = self.sizes if kept is None else kept
        total = self.input_elements
        for a in self.activations:
            total += a.elements if a.group is None else a.elements * kept[a.group] // self.groups[a.group].size
        return total

    def weight_axes(self) -> dict[tuple[str, str], tuple[tuple[int, int, int], ...]]:
        return {(w.layer, w.attr): w.pruned_axes for w in self.weights if w.pruned_axes}


def layer_weight(model, layer: str, attr: str):
    return getattr(model.get_layer(layer), attr)


class _Groups:
    """Union-find over provisional groups; Add joins them, model outputs freeze them."""

    def __init__(self):
        self.parent, self.size, self.frozen, self.axes, self.producers = [], [], [], [], []

    def new(self, size: int, producer: str) -> int:
        self.parent.append(len(self.parent))
        self.size.append(size)
        self.frozen.append(False)
        self.axes.append([])
        self.producers.append([producer])
        return len(self.parent) - 1

    def find(self, g: int) -> int:
        while self.parent[g] != g:
            g = self.parent[g]
        return g

    def union(self, a: int, b: int) -> int:
        a, b = self.find(a), self.find(b)
        if a != b:
            self.parent[b] = a
            self.frozen[a] |= self.frozen[b]
            self.axes[a] += self.axes[b]
            self.producers[a] += self.producers[b]
        return a


def _shape(tensor) -> tuple:
    return tuple(None if d is None else int(d) for d in tensor.shape)


def _inbound(model, layers):
    """Each layer's inbound layer names, in call order (Sequential: the previous layer)."""
    if type(model).__name__ == "Sequential":
        names = [layer.name for layer in layers]
        return {name: ([names[i - 1]] if i else []) for i, name in enumerate(names)}
    result = {}
    for layer in layers:
        if len(layer._inbound_nodes) > 1:
            raise UnsupportedLayerError(
                f"layer '{layer.name}' ({type(layer).__name__}) is called more than once; "
                "shared layers cannot be pruned")
        inputs = [] if type(layer).__name__ == "InputLayer" else as_list(layer.input)
        result[layer.name] = [t._keras_history[0].name for t in inputs]
    return result


def as_list(x) -> list:
    """Keras hands out one tensor or a list of them: always a list."""
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _check_layer(layer, cls):
    if rule_for(cls) is None:
        raise UnsupportedLayerError(
            f"layer '{layer.name}' ({cls}) is not supported by pruning groups; "
            f"supported layers: {', '.join(sorted(RULES))} (or teach it with dynhp_tf.register_layer)")
    problems = {
        "data_format": getattr(layer, "data_format", "channels_last") != "channels_last",
        "groups": getattr(layer, "groups", 1) != 1,
        "depth_multiplier": getattr(layer, "depth_multiplier", 1) != 1,
        "axis": cls == "BatchNormalization" and as_list(layer.axis) not in ([-1], [len(_shape(layer.input)) - 1]),
    }
    bad = [k for k, v in problems.items() if v]
    if bad:
        raise UnsupportedLayerError(
            f"layer '{layer.name}' ({cls}) has an unsupported setting: {bad[0]}="
            f"{getattr(layer, bad[0])!r} (expected channels_last, one group, depth_multiplier 1 "
            "and normalisation over the last axis)")


def pruning_groups(model) -> PruningGraph:
    """Computes the pruning groups of a built Keras model (Sequential or Functional).

    The output layer's neurons, and any channels that reach a model output or are joined by
    Add to the model input, are never pruned.

    Raises:
        UnsupportedLayerError: a layer whose class or settings the groups cannot model.
    """
    if not model.built:
        raise ValueError("model: expected a built model (call it or give it an input shape first)")
    layers = list(model.layers)
    for layer in layers:
        _check_layer(layer, type(layer).__name__)
    inbound = _inbound(model, layers)
    groups = _Groups()
    state: dict[str, tuple[int, int] | None] = {}  # layer output -> (group, tile) or None
    activations = []
    weight_axes: dict[tuple[str, str], list[tuple[int, int, str, int]]] = {}

    def add_axis(group, layer, attr, axis, role, tile=1):
        if getattr(layer, attr, None) is not None:
            groups.axes[group].append((layer.name, attr, axis, role, tile))

    for layer in layers:
        cls = type(layer).__name__
        rule = RULES[cls]
        ins = [state[name] for name in inbound[layer.name]]
        src = ins[0] if ins else None
        if rule.kind == "producer":
            kernel_rank = len(layer.kernel.shape)
            if src is not None:
                add_axis(src[0], layer, "kernel", kernel_rank - 2, "outgoing", src[1])
            g = groups.new(int(layer.kernel.shape[-1]), layer.name)
            add_axis(g, layer, "kernel", kernel_rank - 1, "incoming")
            for attr, axis in rule.channel_weights:
                add_axis(g, layer, attr, axis, "channel")
            out = (g, 1)
        elif rule.kind == "channelwise":
            if src is not None:
                for attr, axis in rule.channel_weights:
                    add_axis(src[0], layer, attr, axis, "channel")
            out = src
        elif rule.kind == "view":
            spatial = math.prod(_shape(layer.input)[1:-1])
            out = None if src is None else (src[0], src[1] * spatial)
        elif rule.kind == "add":
            if any(s is None for s in ins):
                for s in ins:
                    if s is not None:
                        groups.frozen[groups.find(s[0])] = True
                out = None
            else:
                g = ins[0][0]
                for s in ins[1:]:
                    g = groups.union(g, s[0])
                out = (g, ins[0][1])
        elif rule.kind == "preprocess" and src is not None:
            raise UnsupportedLayerError(
                f"layer '{layer.name}' ({cls}) acts per input element and is supported only before the "
                "first Dense/Conv layer")
        else:  # input, pass, preprocess
            out = src
        state[layer.name] = out
        if rule.kind not in ("view", "input"):
            elements = math.prod(d for d in _shape(layer.output)[1:])
            activations.append((layer.name, elements, None if out is None else out[0]))

    for tensor in as_list(model.outputs):
        s = state[tensor._keras_history[0].name]
        if s is not None:
            groups.frozen[groups.find(s[0])] = True

    roots = [g for g in range(len(groups.parent)) if groups.find(g) == g and not groups.frozen[g]]
    index = {root: i for i, root in enumerate(roots)}
    result = []
    for root in roots:
        axes = tuple(WeightAxis(*a) for a in groups.axes[root])
        for a in axes:
            weight_axes.setdefault((a.layer, a.attr), []).append((index[root], a.axis, a.tile))
        result.append(PruningGroup(groups.producers[root][0], groups.size[root],
                                   tuple(groups.producers[root]), axes))

    def group_of(g):
        return None if g is None else index.get(groups.find(g))

    weights = []
    for layer in layers:
        rule = RULES[type(layer).__name__]
        names = ("kernel",) * (rule.kind == "producer") + tuple(a for a, _ in rule.channel_weights)
        attrs = {id(getattr(layer, a)): a for a in names if getattr(layer, a, None) is not None}
        positions = math.prod(_shape(layer.output)[1:-1])
        trainable_ids = {id(v) for v in layer.trainable_weights}
        for i, v in enumerate(layer.weights):
            attr = attrs.get(id(v), f"weight{i}")
            weights.append(WeightInfo(layer.name, attr, tuple(int(d) for d in v.shape), id(v) in trainable_ids,
                                      tuple(weight_axes.get((layer.name, attr), ())),
                                      positions if attr in rule.mac_weights else 0))
    input_elements = sum(math.prod(_shape(t)[1:]) for t in as_list(model.inputs))
    return PruningGraph(tuple(result), tuple(weights),
                        tuple(Activation(n, e, group_of(g)) for n, e, g in activations), input_elements)


def _index(keep_vector: np.ndarray, tile: int) -> np.ndarray:
    """Indices along an axis kept when `keep_vector` channels are kept (NHWC flatten order)."""
    return np.flatnonzero(np.tile(keep_vector, tile))


def kept_index(pruned_axes, keep: list[np.ndarray], shape) -> list[np.ndarray]:
    """Per axis of a weight of `shape`, the indices the kept neurons use (all on unpruned axes)."""
    index = [np.arange(n) for n in shape]
    for g, axis, tile in pruned_axes:
        index[axis] = _index(keep[g], tile)
    return index


def slice_weight(value: np.ndarray, pruned_axes, keep: list[np.ndarray]) -> np.ndarray:
    """The part of a weight that the kept neurons use."""
    for g, axis, tile in pruned_axes:
        value = np.take(value, _index(keep[g], tile), axis=axis)
    return value


def expand_weight(value: np.ndarray, pruned_axes, keep: list[np.ndarray], shape) -> np.ndarray:
    """The inverse of `slice_weight`: a weight of the full `shape`, zero outside kept neurons."""
    index = kept_index(pruned_axes, keep, shape)
    full = np.zeros(shape, dtype=np.asarray(value).dtype)
    full[np.ix_(*index)] = value
    return full


def _along(value: np.ndarray, axis: int, tile: int, size: int) -> np.ndarray:
    """Moves `axis` first and splits it into (tile, size): result[:, j] holds channel j."""
    value = np.moveaxis(value, axis, 0)
    return value.reshape(tile, size, -1)


def neuron_norms(model, group: PruningGroup, role: str, order: int = 2) -> np.ndarray:
    """Per neuron, the sum over the group's `role` slices of |w|**order."""
    total = np.zeros(group.size)
    for a in group.axes_with_role(role):
        value = np.asarray(layer_weight(model, a.layer, a.attr))
        total += (np.abs(_along(value, a.axis, a.tile, group.size)) ** order).sum(axis=(0, 2))
    return total


def zero_outgoing(model, graph: PruningGraph) -> list[np.ndarray]:
    """Per group, True for neurons whose outgoing weights are all exactly zero.

    Such a neuron has no effect on the output whatever its activation; it is one of the two
    cases of `dynhp_tf.compact.removable_neurons`.
    """
    return [(neuron_norms(model, g, "outgoing", 1) == 0) if g.axes_with_role("outgoing") else np.zeros(g.size, bool)
            for g in graph.groups]
