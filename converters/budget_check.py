"""The training side's device estimates, seen from the exporter.

`estimate_vs_measured` puts `dynhp_tf.budget`'s estimate for the exported widths beside what
the export measured (report.json "estimate", report.md); `fit_hint` is the does-not-fit
suggestion, computed by the same estimator and the same bisection the callback prunes with,
so following it (`DynHPCallback(target_board=...)`) gives a model that fits.

Example:
    >>> estimate_vs_measured(model, board, flatbuffer_bytes=30_000, arena_bytes=2_000)
"""
from __future__ import annotations

import dataclasses

from dynhp_tf.board_profiles import model_limits
from dynhp_tf.budget import device_plan, largest_fitting
from dynhp_tf.compact import kept_neurons
from dynhp_tf.groups import pruning_groups
from dynhp_tf.importance import l2_product


def _plan(model, zero_biases=False, head="int8"):
    graph = pruning_groups(model)
    return graph, device_plan(model, graph, zero_biases, head), kept_neurons(model, graph)


def estimate_vs_measured(model, board, *, flatbuffer_bytes: int, arena_bytes: int, macs: int,
                         head: str = "int8") -> dict:
    """{figure: {"estimated", "measured", "error"}} for the model's kept widths (and `head`, as
    exported)."""
    _, plan, keep = _plan(model, zero_biases=True, head=head)  # the exported weights are final
    estimate = plan.estimate([int(k.sum()) for k in keep], board.per_channel_dense)
    measured = {"flatbuffer_bytes": flatbuffer_bytes, "arena_bytes": arena_bytes, "macs": macs}
    return {k: {"estimated": getattr(estimate, k), "measured": v,
                "error": getattr(estimate, k) / v - 1 if v else 0.0} for k, v in measured.items()}


def fit_hint(model, board, head: str = "int8") -> str:
    """What to train for `board` (and `head`): the callback arguments, and the compression they
    lead to when the model's current weights rank the neurons (l2_product)."""
    graph, plan, keep = _plan(model, head=head)
    limits = model_limits(dataclasses.asdict(board))
    found = largest_fitting(plan, keep, l2_product(model, graph), limits, board.per_channel_dense,
                            multiple=board.width_multiple)
    if found is None:
        return (f"even one neuron per layer does not fit by the estimator: the input or output layer is too "
                f"large for {board.name}")
    params, narrow = found
    widths = ", ".join(f"{g.name} {int(k.sum())}" for g, k in zip(graph.groups, narrow))
    return (f"about {graph.params() / params:.1f}x compression would fit by the estimator (ranked by these "
            f"weights: widths {widths}); train with DynHPCallback(target_board='{board.name}'"
            f"{'' if head == 'int8' else f', head={head!r}'}), which prunes "
            f"until the estimates fit")
