"""The compact rebuild: the physically narrower network that the kept neurons describe.

One mechanism for training and export. `narrow_model` writes the kept widths into the
model's config (each producer's width key from `dynhp_tf.layers`), builds the narrower model
and slices every weight to the kept neurons; `narrow_slots` and `build_optimizer` give a fresh
optimizer of the same class and settings whose slots (momenta, velocities) are those of the
kept entries, step count carried over; `expand_variables` and `expand_optimizer_state` write a
narrow state back into the full-width one, whose removed neurons are zero already. Both read
and write in place (`dynhp_tf.inplace`), so the full-width weights are never copied whole.

`removable_neurons` is the one definition of "pruned" that the callback, the memory model
and the exporter share: a neuron whose outgoing weights are all exactly zero, or whose
incoming kernel is all zero and whose channel is then exactly zero where the next layers read
it (its activation and any BatchNorm map it to 0). Removing it leaves the outputs unchanged.
"""
from __future__ import annotations

import contextlib

import numpy as np

from dynhp_tf._keras import LEGACY, keras
from dynhp_tf.groups import PruningGraph, as_list, neuron_norms, zero_outgoing
from dynhp_tf.inplace import assign_kept, free_variables, take_kept, write_kept
from dynhp_tf.layers import rule_for


def single(xs: list):
    """One input as itself, several as a list: the structure a Keras model expects."""
    return xs[0] if len(xs) == 1 else xs


def probe_inputs(model, count=8, seed=0):
    """Random inputs in the structure the model expects (one array, or a list of them)."""
    rng = np.random.default_rng(seed)
    return single([rng.normal(size=(count,) + tuple(int(d) for d in t.shape[1:])).astype("float32")
                   for t in model.inputs])


def _zero_at_consumers(model, graph: PruningGraph, candidates: list[np.ndarray]) -> list[np.ndarray]:
    """Among candidate neurons, those whose channel is exactly 0 at every consumer's input.

    With a zero incoming kernel a channel is the same constant for every input, so one probe
    batch decides it exactly.
    """
    consumers = sorted({a.layer for g in graph.groups for a in g.axes_with_role("outgoing")})
    if not consumers or not any(c.any() for c in candidates):
        return candidates
    probe = keras.Model(single(model.inputs), [model.get_layer(name).input for name in consumers])
    values = dict(zip(consumers, [np.asarray(v) for v in as_list(probe(probe_inputs(model), training=False))]))
    result = []
    for group, candidate in zip(graph.groups, candidates):
        zero = candidate.copy()
        for a in group.axes_with_role("outgoing"):
            v = values[a.layer]
            zero &= np.all(v.reshape(len(v), -1, group.size) == 0, axis=(0, 1))
        result.append(zero)
    return result


def removable_neurons(model, graph: PruningGraph) -> list[np.ndarray]:
    """Per group, True for neurons that can be removed without changing the model's outputs."""
    outgoing = zero_outgoing(model, graph)
    incoming = _zero_at_consumers(model, graph, [neuron_norms(model, g, "incoming", 1) == 0 for g in graph.groups])
    return [o | i for o, i in zip(outgoing, incoming)]


def kept_neurons(model, graph: PruningGraph) -> list[np.ndarray]:
    """Per group, the neurons that stay; at least one each (a layer cannot be empty)."""
    keep = [~r for r in removable_neurons(model, graph)]
    for k in keep:
        if not k.any():  # its one remaining neuron contributes exactly 0
            k[0] = True
    return keep


def _variables(model) -> list:
    """The model's variables in the order of `PruningGraph.weights` (layer by layer)."""
    return [v for layer in model.layers for v in layer.weights]


def narrow_model(model, graph: PruningGraph, keep: list[np.ndarray]):
    """The narrower model with only the kept neurons, weights sliced exactly.

    `graph` is `pruning_groups(model)`; `keep[g]` is a boolean vector over group g's neurons.
    Build it inside the strategy scope that should own its variables.
    """
    widths = {p: int(k.sum()) for g, k in zip(graph.groups, keep) for p in g.producers}
    config = model.get_config()
    initializers = {}  # layer name -> its initializer settings, restored after the build
    for entry in config["layers"]:
        entry.pop("build_config", None)  # Keras 3 would build each layer at its old width
        layer_config = entry["config"]
        if layer_config.get("name") in widths:
            layer_config[rule_for(entry["class_name"]).width_key] = widths[layer_config["name"]]
        # Every weight is overwritten below: building with zeros skips the random draws, whose
        # temporaries (several times a kernel's size) set the memory peak of a pruning event.
        chosen = {k: v for k, v in layer_config.items() if k.endswith("_initializer") and isinstance(v, dict)}
        initializers[layer_config.get("name")] = chosen
        layer_config.update(dict.fromkeys(chosen, "zeros"))
    compact = type(model).from_config(config)
    for layer in compact.layers:
        for key, value in initializers.get(layer.name, {}).items():
            if hasattr(layer, key):
                setattr(layer, key, keras.initializers.get(value))
    for info, source, target in zip(graph.weights, _variables(model), _variables(compact)):
        assign_kept(target, source, info.pruned_axes, keep)
    for layer in compact.layers:  # an adapted Normalization derives mean/variance from its
        if hasattr(layer, "finalize_state") and layer.weights:  # variables only here
            layer.finalize_state()
    return compact


def expand_variables(source_model, target_model, graph: PruningGraph, keep: list[np.ndarray]) -> None:
    """Writes a narrow model's weights into the full-width `target_model`, in place.

    The removed neurons' entries of `target_model` must be zero already (`NeuronMasks.update`).
    """
    for info, source, target in zip(graph.weights, _variables(source_model), _variables(target_model)):
        write_kept(target, source, info.pruned_axes, keep)


def _base_name(variable) -> str:
    name = getattr(variable, "path", None) or variable.name
    return name.split(":")[0]


def optimizer_slots(optimizer, variable) -> list:
    """The optimizer variables (momenta, velocities, ...) that shadow `variable`, in order."""
    if optimizer is None:
        return []
    base = _base_name(variable)
    keras3_prefix = base.replace("/", "_") + "_"  # e.g. dense_kernel_momentum
    slots = []
    for slot in optimizer.variables:
        if tuple(slot.shape) != tuple(variable.shape) or slot is variable:
            continue
        name = _base_name(slot)
        leaf = name.split("/")[-1]
        tf_keras_match = name.endswith("/" + base)  # e.g. Adam/m/dense/kernel
        if leaf.startswith(keras3_prefix) or tf_keras_match:
            slots.append(slot)
    return slots


def clone_optimizer(optimizer, learning_rate=None):
    """A new, unbuilt optimizer of the same class and settings (current learning rate included,
    unless `learning_rate` replaces it)."""
    config = optimizer.get_config()
    if learning_rate is not None:
        config["learning_rate"] = learning_rate
    return type(optimizer).from_config(config)


@contextlib.contextmanager
def _slots_from(optimizer, queues: dict[int, list]):
    """While `optimizer` builds, the slots of a variable whose id is in `queues` start from the
    queued values, in creation order, instead of zeros (a building optimizer otherwise holds a
    zero copy of every slot while the values to write into them wait beside it)."""
    original = optimizer.add_variable_from_reference

    def from_queue(*args, **kwargs):  # tf_keras names the variable model_variable=, Keras 3 passes it first
        reference = args[0] if args else kwargs.get("model_variable", kwargs.get("reference_variable"))
        queue = queues.get(id(reference))
        if queue:
            value = queue.pop(0)
            if LEGACY:
                kwargs["initial_value"] = value
            else:
                kwargs["initializer"] = lambda shape, dtype=None: value
        return original(*args, **kwargs)

    optimizer.add_variable_from_reference = from_queue
    try:
        yield
    finally:
        del optimizer.add_variable_from_reference


def _trainable(model, graph: PruningGraph) -> list:
    """(info, variable) of the model's trainable weights, in `graph.weights` order."""
    return [(info, v) for info, v in zip(graph.weights, _variables(model)) if info.trainable]


def narrow_slots(optimizer, model, graph: PruningGraph, keep: list[np.ndarray], free: bool = False) -> list[list]:
    """Per trainable weight of `model`, its optimizer slots sliced to the kept neurons.

    With `free`, each slot is emptied as soon as it is read (the optimizer is dropped
    afterwards), so the full-width state shrinks while the narrow one grows.
    """
    pairs = _trainable(model, graph)
    sources = [optimizer_slots(optimizer, v) for _, v in pairs]  # matched by shape: before emptying
    values = []
    for (info, _), slots in zip(pairs, sources):
        values.append([])
        for slot in slots:
            values[-1].append(take_kept(slot, info.pruned_axes, keep))
            if free:
                free_variables([slot])
    return values


def build_optimizer(optimizer, model, graph: PruningGraph, values: list[list], iterations,
                    keep: list[np.ndarray] | None = None) -> None:
    """Builds `optimizer` on `model`'s trainable weights with the slot `values` (one list per
    weight) and the step count `iterations`.

    Without `keep`, the values have the weights' shapes and the slots start from them. With
    `keep` (`model` is full width, the values narrow), they go into the kept neurons' entries
    of zero slots.
    """
    pairs = _trainable(model, graph)
    queues = {id(v): list(slot_values) for (_, v), slot_values in zip(pairs, values)}
    values.clear()  # each value now lives only until its slot holds it
    with _slots_from(optimizer, queues if keep is None else {}):
        optimizer.build([v for _, v in pairs])
    for info, variable in pairs:
        rest = queues.pop(id(variable))  # what the build did not take (an optimizer that builds otherwise)
        targets = optimizer_slots(optimizer, variable)
        for value, slot in zip(rest, targets[len(targets) - len(rest):]):
            if keep is None:
                slot.assign(value)
            else:
                write_kept(slot, value, info.pruned_axes, keep)
    optimizer.iterations.assign(iterations)


def expand_optimizer_state(source_opt, target_opt, source_model, target_model, graph: PruningGraph,
                           keep: list[np.ndarray]) -> None:
    """Builds `target_opt` on the full-width `target_model` with the narrow `source_opt`'s state:
    its slots go into the kept entries of zero slots, and the step count is carried over."""
    values = [optimizer_slots(source_opt, v) for _, v in _trainable(source_model, graph)]
    build_optimizer(target_opt, target_model, graph, values, source_opt.iterations, keep)


def compile_args(model) -> dict:
    """The arguments `model` was compiled with (loss, metrics, ...), without the optimizer."""
    if LEGACY:
        args = dict(model._get_compile_args())
        args.update(run_eagerly=model.run_eagerly)
    else:
        args = dict(model._compile_config.config)
    args.pop("optimizer", None)
    return args
