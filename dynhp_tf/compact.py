"""The compact rebuild: the physically narrower network that the kept neurons describe.

One mechanism for training and export. `narrow_model` writes the kept widths into the
model's config (each producer's width key from `dynhp_tf.layers`), builds the narrower model
and slices every weight to the kept neurons; `narrow_optimizer` gives a fresh optimizer of the
same class and settings whose slots (momenta, velocities) and step count are those of the
kept entries; `expand_variables` writes a narrow state back into the full-width one, whose
removed neurons are zero already. Both read and write in place (`dynhp_tf.inplace`), so the
full-width weights are never copied whole.

`removable_neurons` is the one definition of "pruned" that the callback, the memory model
and the exporter share: a neuron whose outgoing weights are all exactly zero, or whose
incoming kernel is all zero and whose channel is then exactly zero where the next layers read
it (its activation and any BatchNorm map it to 0). Removing it leaves the outputs unchanged.
"""
from __future__ import annotations

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


def clone_optimizer(optimizer):
    """A new, unbuilt optimizer of the same class and settings (current learning rate included)."""
    return type(optimizer).from_config(optimizer.get_config())


def move_optimizer_state(source_opt, target_opt, source_model, target_model, graph: PruningGraph,
                         keep: list[np.ndarray], narrow: bool, free_source: bool = False) -> None:
    """Builds `target_opt` on `target_model`'s trainable weights with `source_opt`'s state.

    Slots are sliced to the kept neurons (`narrow=True`, full width -> narrow) or written into
    the kept entries of the new, zero slots (`narrow=False`, narrow -> full width); the step
    count is carried over. With `free_source`, each source slot is emptied as soon as it is
    read (the source optimizer is dropped afterwards); narrowing then reads every slot before
    the target's slots exist, so the old full state and the new zero slots never coexist.
    """
    pairs = [(info, s, t) for info, s, t in zip(graph.weights, _variables(source_model),
                                                 _variables(target_model)) if info.trainable]
    sources = [optimizer_slots(source_opt, s) for _, s, _ in pairs]  # matched by shape: before emptying
    values = []
    for (info, _, _), slots in zip(pairs, sources):
        values.append([take_kept(a, info.pruned_axes, keep) if narrow else a for a in slots])
        if free_source and narrow:
            free_variables(slots)
    target_opt.build([t for _, _, t in pairs])
    for i, (info, _, target) in enumerate(pairs):
        slot_values, values[i] = values[i], None  # each narrow value lives until it is in place
        for value, b in zip(slot_values, optimizer_slots(target_opt, target)):
            if narrow:
                b.assign(value)
            else:
                write_kept(b, value, info.pruned_axes, keep)
        if free_source and not narrow:
            free_variables(slot_values)
    target_opt.iterations.assign(source_opt.iterations)


def compile_args(model) -> dict:
    """The arguments `model` was compiled with (loss, metrics, ...), without the optimizer."""
    if LEGACY:
        args = dict(model._get_compile_args())
        args.update(run_eagerly=model.run_eagerly)
    else:
        args = dict(model._compile_config.config)
    args.pop("optimizer", None)
    return args
