"""The export's compact rebuild: `dynhp_tf.compact` builds it, this module verifies it.

TFLM has no sparse kernels, so zeros cost as much as any weight on the device; only a model
whose layers are narrower saves flash, RAM and time. The narrow model is built by the same
mechanism DynHP trains with (`dynhp_tf.compact.narrow_model` over the neurons that
`removable_neurons` finds), so the exported size is the size the callback reported. Here the
export checks that the rebuilt model computes what the original computes.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from dynhp_tf.converters.errors import RebuildMismatchError
from dynhp_tf.compact import kept_neurons, narrow_model, probe_inputs
from dynhp_tf.groups import as_list, pruning_groups

# float32 rounding grows with the outputs' magnitude: allow this much relative to their scale.
RELATIVE_TOLERANCE = 1e-5


@dataclasses.dataclass
class CompactModel:
    model: object
    widths: dict[str, tuple[int, int]]
    params_dense: int
    params_compact: int
    macs_dense: int
    macs_compact: int
    max_abs_difference: float
    allowed_difference: float


def count_macs(model) -> int:
    """Multiply-accumulates per inference of the layers that multiply (kernels)."""
    return pruning_groups(model).macs()


def compact_model(model, relative_tolerance: float = RELATIVE_TOLERANCE) -> CompactModel:
    """Builds the physically smaller model and checks its outputs equal the original's.

    The outputs on random inputs may differ by `relative_tolerance` times their largest
    magnitude (float32 rounding), never more.

    Raises:
        UnsupportedLayerError: a layer the pruning groups cannot model (named, with class).
        RebuildMismatchError: outputs differ by more than the tolerance.
    """
    graph = pruning_groups(model)
    keep = kept_neurons(model, graph)
    compact = narrow_model(model, graph, keep)
    inputs = probe_inputs(model, count=16, seed=1)
    expected = [np.asarray(t) for t in as_list(model(inputs, training=False))]
    actual = [np.asarray(t) for t in as_list(compact(inputs, training=False))]
    difference = max(float(np.max(np.abs(e - a))) for e, a in zip(expected, actual))
    scale = max(float(np.max(np.abs(e))) for e in expected)
    allowed = relative_tolerance * max(scale, 1.0)
    if not difference <= allowed:
        raise RebuildMismatchError(f"compact model differs from the original by {difference:.3g} (> {allowed:.3g}, "
                                   f"{relative_tolerance:g} of the outputs' scale {scale:.3g})")
    widths = {p: (g.size, int(k.sum())) for g, k in zip(graph.groups, keep) for p in g.producers}
    kept = [int(k.sum()) for k in keep]
    return CompactModel(compact, widths, graph.params(), graph.params(kept), graph.macs(), graph.macs(kept),
                        difference, allowed)
