"""HALO, the hierarchical adaptive lasso (Seto, Wells, Zhang; SDM 2021): a learned sparsity penalty.

Added to the training loss:

    xi * sum_j |w_j| / s_j**2  +  psi * sum_j s_j

with one trainable scale s_j > 0 (initialised to 1) per weight (`level="weight"`, the paper) or
per neuron (`level="neuron"`: s_j divides the L1 norm of neuron j's incoming and outgoing
weights, its pruning group's kernel slices). Minimising over s_j alone gives a penalty
proportional to |w_j|**(1/3): small weights are pushed hard toward zero, large ones lightly.
After training, `magnitude_threshold` keeps an exact fraction of the weights (one global
threshold, no fine-tuning, as in the paper) and `strip` returns a plain model.

Why the mechanism is what it is:
- The penalty reaches the loss the way a Keras weight regularizer does (Keras 3: the
  `regularizer` of one penalised variable; tf_keras: a callable loss of the model), so
  `model.fit`, its printed loss and distribution strategies treat it like any L1/L2 term.
  It sits on the variables, not in the layer configs: the model's config stays plain, so a
  model with HALO attached saves (.keras, .h5) and loads as the plain model; the scales are not
  in the file (`Halo.state()` holds them to resume).
- The scales are not model variables. The data loss does not depend on them; the gradient of
  the penalty in s needs only w and s. So they take their own step after each train step, at
  the model optimizer's current learning rate (the authors also train them with a second
  optimizer on the same schedule). This keeps them out of `model.weights`, the optimizer's
  slots and the compact rebuild, and under MirroredStrategy one cross-replica update keeps all
  replicas' copies equal. Rules: "adam" (default) or "sgd" with momentum 0.9 (the authors'
  choice); benchmarks/halo.py measures both.
- The scales stay >= `min_scale` (default 0.01). |w|/s**2 has a pole at s = 0, and a weight
  whose scale is s is pushed toward 0 by lr * xi / s**2 per step, whatever its size: near the
  pole that push exceeds the weights themselves and makes small weights jump around zero
  instead of settling there. The "adam" rule steps log s (relative steps) for the same reason.
- Which weights: the kernels of the layers the pruning groups support (`dynhp_tf.layers`),
  output layer included; biases and BatchNorm are not penalised. Unsupported layers are
  refused by `pruning_groups`, by name and class.
"""
from __future__ import annotations

import weakref

import numpy as np
import tensorflow as tf

from dynhp_tf._keras import LEGACY, keras
from dynhp_tf.groups import PruningGraph, layer_weight, neuron_norms, pruning_groups, slice_weight

LEVELS = ("weight", "neuron")
SCALE_RULES = ("adam", "sgd")
_ATTACHED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # model -> Halo attached to it


def attached_halo(model):
    """The `Halo` whose penalty is on `model`'s loss now, or None."""
    return _ATTACHED.get(model)


def _learning_rate(optimizer) -> float:
    value = optimizer.learning_rate
    if isinstance(value, keras.optimizers.schedules.LearningRateSchedule):
        value = value(optimizer.iterations)
    return float(value.numpy() if hasattr(value, "numpy") else value)  # a tf_keras MirroredVariable has no __array__


def _variables(model) -> list:
    """The model's variables in the order of `PruningGraph.weights`."""
    return [v for layer in model.layers for v in layer.weights]


class Halo(keras.callbacks.Callback):
    """The HALO penalty on a Keras model's loss, with scales that learn during `model.fit`.

    As a callback it attaches itself to the model at the start of fit (if not attached yet)
    and steps the scales after every train step. Attach it by hand (`attach(model)`) to read
    the penalty before fitting. Not with DynHPCallback: after its first pruning event a
    narrow copy trains, not `model`; use `DynHPCallback(criterion="halo")`, which moves the
    penalty onto that copy.

    Args:
        xi: strength of the scaled L1 term (> 0).
        psi: strength of the scales' own L1 term (> 0); the scales settle near
            (2 * xi * |w| / psi) ** (1/3).
        level: "weight" (one scale per kernel entry, the paper) or "neuron" (one per neuron of
            each pruning group, over its incoming and outgoing kernel slices).
        scale_rule: how the scales step: "adam" (default) or "sgd" (momentum 0.9).
        min_scale: the scales never go below this (they must stay positive).

    Example:
        >>> halo = Halo(xi=1e-4, psi=1e-4)
        >>> model.fit(x, y, epochs=10, callbacks=[halo])
        >>> magnitude_threshold(model, keep_fraction=0.05)
        >>> plain = strip(model)  # a plain Keras model; save or export it like any other
    """

    def __init__(self, xi=1e-4, psi=1e-4, level="weight", scale_rule="adam", min_scale=1e-2):
        super().__init__()
        for name, value in (("xi", xi), ("psi", psi), ("min_scale", min_scale)):
            if not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name}: expected a number > 0, got {value!r}")
        if level not in LEVELS:
            raise ValueError(f"level: expected one of {', '.join(LEVELS)}, got {level!r}")
        if scale_rule not in SCALE_RULES:
            raise ValueError(f"scale_rule: expected one of {', '.join(SCALE_RULES)}, got {scale_rule!r}")
        self.xi, self.psi, self.level = float(xi), float(psi), level
        self.scale_rule, self.min_scale = scale_rule, float(min_scale)
        self.network = None  # the model whose loss carries the penalty
        self.graph: PruningGraph | None = None

    def get_config(self) -> dict:
        return {"xi": self.xi, "psi": self.psi, "level": self.level, "scale_rule": self.scale_rule,
                "min_scale": self.min_scale}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    # --- attaching -----------------------------------------------------------------------

    def attach(self, model, graph: PruningGraph | None = None, state: dict | None = None) -> "Halo":
        """Puts the penalty on `model`'s loss (moving it from any model it was on).

        Args:
            model: a built Keras model whose layers the pruning groups support.
            graph: `pruning_groups(model)`, if already computed.
            state: `Halo.state()` of a previous attachment (scales and their optimizer
                moments), with the shapes this model needs; default: scales 1.

        Raises:
            UnsupportedLayerError: a layer the pruning groups cannot model.
        """
        graph = graph or pruning_groups(model)
        if self.network is not None:
            self.detach()
        weights = dict(zip(((w.layer, w.attr) for w in graph.weights), _variables(model)))
        if self.level == "weight":
            # (variable, None): the scale has the variable's shape.
            targets = [(weights[(w.layer, w.attr)], None) for w in graph.weights if w.trainable and w.positions]
            shapes = [w.shape for w in graph.weights if w.trainable and w.positions]
        else:
            axes: dict = {}
            for g, group in enumerate(graph.groups):
                for a in group.axes:
                    if a.role in ("incoming", "outgoing"):
                        axes.setdefault((a.layer, a.attr), []).append((g, a.axis, a.tile))
            targets = [(weights[key], tuple(value)) for key, value in axes.items()]
            shapes = [(g.size,) for g in graph.groups]
        if not targets:
            raise ValueError("model: HALO found no kernel to penalise (no Dense/Conv layer, or no prunable neuron)")
        initial = state or {"scale": [np.ones(s, "float32") for s in shapes],
                            "m": [np.zeros(s, "float32") for s in shapes],
                            "v": [np.zeros(s, "float32") for s in shapes], "step": 0}
        for name in ("scale", "m", "v"):
            if [tuple(a.shape) for a in initial[name]] != [tuple(s) for s in shapes]:
                raise ValueError(f"state: expected {name} arrays of shapes {shapes}, got "
                                 f"{[tuple(a.shape) for a in initial[name]]}")
        with model.distribute_strategy.scope():
            def variables(name):
                return [tf.Variable(np.asarray(a, "float32"), trainable=False, name=f"halo_{name}")
                        for a in initial[name]]
            self.scales, self._m, self._v = variables("scale"), variables("m"), variables("v")
            self._step = tf.Variable(int(initial["step"]), trainable=False, dtype=tf.int64, name="halo_step")
        self.network, self.graph, self._targets = model, graph, targets
        self._hook()
        self._update = tf.function(self._update_scales)
        _ATTACHED[model] = self
        return self

    def _hook(self) -> None:
        """Makes Keras add the penalty to the model's loss, the way it adds regularizers."""
        if LEGACY:
            self.network.add_loss(self.penalty)  # a callable loss, evaluated in each step
        else:
            self._targets[0][0].regularizer = lambda _: self.penalty()

    def detach(self) -> None:
        """Takes the penalty off the model's loss; the scales stay readable in `state()`."""
        if self.network is None:
            return
        if LEGACY:  # tf_keras wraps callable losses in functools.partial(_tag_callable, loss)
            self.network._callable_losses[:] = [
                c for c in self.network._callable_losses if getattr(c, "args", ())[:1] != (self.penalty,)]
        else:
            self._targets[0][0].regularizer = None
        _ATTACHED.pop(self.network, None)
        self.network = None

    def state(self) -> dict:
        """The scales and their optimizer moments as arrays (to resume or move the penalty)."""
        return {"scale": [np.asarray(s) for s in self.scales], "m": [np.asarray(m) for m in self._m],
                "v": [np.asarray(v) for v in self._v], "step": int(self._step.numpy())}

    def narrowed_state(self, keep: list[np.ndarray]) -> dict:
        """`state()` for the network that keeps only the `keep` neurons of each group."""
        state = self.state()
        if self.level == "neuron":
            cut = lambda arrays: [a[k] for a, k in zip(arrays, keep)]  # noqa: E731
        else:
            infos = [w for w in self.graph.weights if w.trainable and w.positions]
            cut = lambda arrays: [slice_weight(a, w.pruned_axes, keep) for a, w in zip(arrays, infos)]  # noqa: E731
        return {name: cut(state[name]) if name != "step" else state[name] for name in state}

    # --- the penalty and the scales ------------------------------------------------------

    def penalty(self, scales=None):
        """The penalty's value now (a scalar tensor), with gradients in weights and scales.

        `scales` replaces the scale variables by tensors of the same shapes (for their gradient).
        """
        scales = self.scales if scales is None else scales
        total = 0.0
        for index, (variable, axes) in enumerate(self._targets):
            w = tf.abs(tf.convert_to_tensor(variable))
            total += tf.reduce_sum(w * tf.cast(self._inverse_square(scales, index, axes, len(w.shape)), w.dtype))
        total = self.xi * total
        return total + self.psi * tf.add_n([tf.reduce_sum(s) for s in scales])

    def _inverse_square(self, scales, index: int, axes, rank: int):
        """1 / s**2 for each entry of target `index`, summed over the neurons the entry belongs to."""
        if axes is None:  # weight level: targets and scales are aligned
            return 1.0 / tf.square(scales[index])
        factor = 0.0
        for g, axis, tile in axes:
            vector = tf.tile(1.0 / tf.square(scales[g]), [tile])
            factor += tf.reshape(vector, [-1 if i == axis else 1 for i in range(rank)])
        return factor

    def _update_scales(self, learning_rate):
        # Plain tensors: under MirroredStrategy this runs in cross-replica context, where a tape
        # cannot watch a distributed variable.
        scales = [tf.convert_to_tensor(s) for s in self.scales]
        with tf.GradientTape() as tape:
            tape.watch(scales)
            value = self.penalty(scales)
        grads = tape.gradient(value, scales)
        self._step.assign_add(1)
        t = tf.cast(self._step, tf.float32)
        for s, m, v, g in zip(self.scales, self._m, self._v, grads):
            if self.scale_rule == "sgd":
                m.assign(0.9 * m + g)
                new = s - learning_rate * m
            else:  # Adam on log s: relative steps, so a scale cannot jump onto the 1/s**2 pole
                g = g * s
                m.assign(0.9 * m + 0.1 * g)
                v.assign(0.999 * v + 0.001 * tf.square(g))
                new = s * tf.exp(-learning_rate * (m / (1 - 0.9 ** t)) / (tf.sqrt(v / (1 - 0.999 ** t)) + 1e-7))
            s.assign(tf.maximum(new, self.min_scale))

    def update_scales(self, optimizer=None) -> None:
        """One step of the scales at `optimizer`'s current learning rate (default: the network's)."""
        optimizer = optimizer or self.network.optimizer
        self._update(tf.constant(_learning_rate(optimizer), tf.float32))

    def importance(self, model, graph: PruningGraph) -> list[np.ndarray]:
        """Neuron scores for DynHP: scale x ||incoming||_2 x ||outgoing||_2 (neuron level).

        The penalty pushes a neuron the harder the smaller its scale; the scale follows the
        neuron's weight mass over the last steps, the norms its weights now.
        """
        if self.level != "neuron" or model is not self.network:
            raise ValueError("criterion: 'halo' needs a neuron-level Halo attached to the model that trains "
                             "(DynHPCallback(criterion='halo') attaches one)")
        return [np.asarray(s) * np.sqrt(neuron_norms(model, g, "incoming")) * np.sqrt(neuron_norms(model, g, "outgoing"))
                for s, g in zip(self.scales, graph.groups)]

    # --- callback hooks ------------------------------------------------------------------

    def on_train_begin(self, logs=None):
        if self.network is not self.model:
            self.attach(self.model)
        # A train function traced before the penalty was attached would leave it out.
        self.model.make_train_function(force=True)

    def on_train_batch_end(self, batch, logs=None):
        self.update_scales()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["halo/penalty"] = float(self.penalty())


def halo_importance(model, graph: PruningGraph, data=None) -> list[np.ndarray]:
    """The "halo" DynHP criterion: `Halo.importance` of the Halo attached to `model`."""
    halo = attached_halo(model)
    if halo is None:
        raise ValueError("criterion: 'halo' needs a neuron-level Halo attached to the model that trains "
                         "(DynHPCallback(criterion='halo') attaches one)")
    return halo.importance(model, graph)


def magnitude_threshold(model, keep_fraction: float) -> int:
    """Zeroes all but the largest-magnitude `keep_fraction` of the kernel weights, globally.

    One threshold over every supported layer's kernel (output layer included; biases and
    BatchNorm are not counted), as HALO's paper prunes after training. Exactly
    `round(keep_fraction * n)` weights stay (ties broken by position). Returns that count.
    """
    if not isinstance(keep_fraction, (int, float)) or not 0 < keep_fraction <= 1:
        raise ValueError(f"keep_fraction: expected a number in (0, 1], got {keep_fraction!r}")
    graph = pruning_groups(model)
    kernels = [layer_weight(model, w.layer, w.attr) for w in graph.weights if w.trainable and w.positions]
    values = [np.asarray(k) for k in kernels]
    flat = np.concatenate([np.abs(v).ravel() for v in values])
    keep_count = int(round(keep_fraction * flat.size))
    keep = np.zeros(flat.size, bool)
    keep[np.argsort(-flat, kind="stable")[:keep_count]] = True
    start = 0
    for kernel, value in zip(kernels, values):
        kernel.assign(np.where(keep[start:start + value.size].reshape(value.shape), value, 0).astype(value.dtype))
        start += value.size
    return keep_count


def strip(model):
    """A plain copy of `model`: same config and weights, no penalty; not compiled.

    Takes the penalty off `model` too. The copy saves and exports like any Keras model.
    """
    halo = attached_halo(model)
    if halo is not None:
        halo.detach()
    plain = type(model).from_config(model.get_config())
    plain.set_weights(model.get_weights())
    return plain
