"""What dynhp-tf knows about each Keras layer class, in one registry.

Everything that needs layer knowledge reads it here: the pruning groups (how channels flow),
the compact rebuild (which config key holds a layer's width), the importance criteria (which
weight axes belong to a neuron) and the counters (parameters, MACs). Supporting a new layer
class is one `register_layer` call, as tfmot's `PrunableLayer` or Torch-Pruning's custom
pruners allow.

Kinds:
    "producer": creates channels. The weight `kernel` has the output channel on its last axis
        and reads the input channel on its second-to-last; `width_key` is the config key of
        the width; `channel_weights` are its other per-channel weights (the bias).
    "channelwise": carries channel j to channel j; `channel_weights` lists (attribute, axis)
        of its per-channel weights (BatchNormalization, DepthwiseConv2D).
    "pass": weightless and keeps the channel axis (activations, pooling, dropout, padding).
    "view": only reshapes (Flatten); holds no activation memory of its own.
    "add": element-wise sum of its inputs: joins their groups.
    "input": a model input.
    "preprocess": acts per input element (Normalization, Rescaling); allowed only before the
        first producer, where no channel group passes through it.
`mac_weights` name the weights whose every entry is one multiply-accumulate per output
position (kernels); the rest (biases, BatchNorm) cost no MACs.
"""
from __future__ import annotations

import dataclasses

KINDS = ("producer", "channelwise", "pass", "view", "add", "input", "preprocess")


@dataclasses.dataclass(frozen=True)
class LayerRule:
    kind: str
    width_key: str | None = None
    channel_weights: tuple[tuple[str, int], ...] = ()
    mac_weights: tuple[str, ...] = ()

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind: expected one of {', '.join(KINDS)}, got {self.kind!r}")
        if (self.kind == "producer") != (self.width_key is not None):
            raise ValueError("width_key: expected for producers (the config key of the width) and only for them")


RULES: dict[str, LayerRule] = {}


def register_layer(class_name: str, rule: LayerRule) -> None:
    """Teaches dynhp-tf a layer class, by its class name (e.g. a custom Dense subclass).

    Example:
        >>> register_layer("MyDense", LayerRule("producer", width_key="units",
        ...                                     channel_weights=(("bias", 0),), mac_weights=("kernel",)))
    """
    RULES[class_name] = rule


def rule_for(class_name: str) -> LayerRule | None:
    return RULES.get(class_name)


_PRODUCER = {"channel_weights": (("bias", 0),), "mac_weights": ("kernel",)}
for _name, _width in (("Dense", "units"), ("Conv1D", "filters"), ("Conv2D", "filters")):
    register_layer(_name, LayerRule("producer", width_key=_width, **_PRODUCER))
register_layer("BatchNormalization", LayerRule(
    "channelwise", channel_weights=tuple((a, 0) for a in ("gamma", "beta", "moving_mean", "moving_variance"))))
# Keras 3 names the depthwise weight `kernel`, tf_keras `depthwise_kernel`.
register_layer("DepthwiseConv2D", LayerRule(
    "channelwise", channel_weights=(("kernel", 2), ("depthwise_kernel", 2), ("bias", 0)),
    mac_weights=("kernel", "depthwise_kernel")))
for _name in ("Activation", "ReLU", "LeakyReLU", "ELU", "Dropout", "SpatialDropout1D", "SpatialDropout2D",
              "GaussianNoise", "GaussianDropout", "MaxPooling1D", "MaxPooling2D", "AveragePooling1D",
              "AveragePooling2D", "ZeroPadding1D", "ZeroPadding2D", "Cropping1D", "Cropping2D", "UpSampling1D",
              "UpSampling2D", "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D",
              "GlobalMaxPooling2D", "Identity"):
    register_layer(_name, LayerRule("pass"))
register_layer("Flatten", LayerRule("view"))
register_layer("InputLayer", LayerRule("input"))
register_layer("Add", LayerRule("add"))
for _name in ("Normalization", "Rescaling"):
    register_layer(_name, LayerRule("preprocess"))
