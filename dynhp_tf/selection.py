"""Which neurons go: a global ranking across groups toward an exact parameter target."""
from __future__ import annotations

import heapq
import math

import numpy as np

from dynhp_tf.groups import PruningGraph


def floors(graph: PruningGraph, min_neurons: int, multiple: int) -> list[int]:
    """The fewest neurons each group may keep: min_neurons rounded up to the width multiple."""
    return [min(g.size, -(-min_neurons // multiple) * multiple) for g in graph.groups]


def smallest_params(graph: PruningGraph, min_neurons: int, multiple: int) -> int:
    return graph.params(floors(graph, min_neurons, multiple))


def _next_width(kept: int, floor: int, multiple: int) -> int | None:
    width = (kept - 1) // multiple * multiple
    return width if width >= floor else None


def uniform_floors(graph: PruningGraph, target_params: float, share: float, multiple: int = 1) -> list[int]:
    """Per group, `share` of the width that pruning every group by one ratio to `target_params` gives.

    Global ranking may empty a small early layer (a CNN's 6 conv1 filters went to 1 in 2 of 3
    seeds) while wide layers keep plenty; this floor ties each layer to its share of the
    network. With share <= 1 the floors together stay within the target, so it stays reachable.

    Example:
        >>> uniform_floors(graph, target_params=5_000, share=0.7)  # LeNet-5-style CNN at 10x
        [2, 4, 25]
    """
    sizes = graph.sizes
    widths = lambda r: [max(1, math.ceil(r * n)) for n in sizes]  # noqa: E731
    low, high = 0.0, 1.0
    for _ in range(40):  # params grow with the ratio: bisect for the largest ratio within the target
        middle = (low + high) / 2
        low, high = (middle, high) if graph.params(widths(middle)) <= target_params else (low, middle)
    # Rounded down to the width multiple: rounding up could lift a floor above the uniform width.
    return [min(n, math.ceil(share * low * n) // multiple * multiple) for n in sizes]


def layer_floors(graph: PruningGraph, target_params: float, share: float, base: list[int],
                 multiple: int = 1) -> list[int]:
    """`base` (the min_neurons floors) raised to `share` of the uniform widths (`uniform_floors`).

    The uniform floors alone stay within the target, but raised `base` floors beside them may
    not (min_neurons=8 on the CNN at 10x: 6-8-25, 6,649 params for a 5,190 target). The layer
    floor is a preference, the target is not: the share is lowered until the floors fit it.
    """
    combined = lambda s: [max(b, u) for b, u in zip(base, uniform_floors(graph, target_params, s, multiple))]  # noqa: E731
    if graph.params(combined(share)) <= target_params:
        return combined(share)
    low, high = 0.0, share
    for _ in range(30):  # the floors grow with the share: bisect for the largest share that fits
        middle = (low + high) / 2
        low, high = (middle, high) if graph.params(combined(middle)) <= target_params else (low, middle)
    return combined(low)


# What a neuron costs when ranking by score per cost: the network's count at given widths.
COSTS = {"params": PruningGraph.params, "macs": PruningGraph.macs}


def select(graph: PruningGraph, keep: list[np.ndarray], scores: list[np.ndarray], target_params: float,
           min_neurons: int = 1, multiple: int = 1, cost: str | None = None,
           layer_floor: float = 0.0) -> list[np.ndarray]:
    """Removes the least important neurons until the network has at most `target_params`.

    Scores are normalised within each group (divided by the mean over its kept neurons) and
    ranked globally. Widths only step between multiples of `multiple`, so neurons leave in
    blocks; a block's score is its mean. Pruned neurons never come back: the result is a
    subset of `keep`. Stops as soon as the target is met, so it overshoots by less than one
    block.

    With `cost` ("params" or "macs"), a block ranks by its score divided by what it saves per
    neuron (relative to the mean saving over groups): otherwise a conv1 filter, which costs a
    few dozen weights, ranks like a dense neuron that costs hundreds, and narrow early layers
    collapse. Savings depend on the neighbours' widths, so every block is re-ranked after each
    removal.

    Args:
        cost: None (default, score only), "params" or "macs".
        layer_floor: 0 (default, off) or a share in (0, 1]: no group is pruned below that share
            of its width under uniform pruning to `target_params` (`layer_floors`: lowered
            where min_neurons's floors beside it would exceed the target).

    Example:
        >>> keep = select(graph, keep, scores, target_params=20_000, cost="params")
    """
    if cost is not None and cost not in COSTS:
        raise ValueError(f"cost: expected one of {sorted(COSTS)} or None, got {cost!r}")
    keep = [k.copy() for k in keep]
    floor = floors(graph, min_neurons, multiple)
    if layer_floor:
        floor = layer_floors(graph, target_params, layer_floor, floor, multiple)
    normalised = []
    for k, s in zip(keep, scores):
        mean = float(np.mean(s[k])) if k.any() else 0.0
        normalised.append(np.asarray(s, float) / (mean if mean > 0 else 1.0))

    counts = [int(k.sum()) for k in keep]

    def saving(g, removed):  # what removing `removed` neurons of group g saves, per neuron
        if cost is None:
            return 1.0
        fewer = list(counts)
        fewer[g] -= removed
        return max(COSTS[cost](graph, counts) - COSTS[cost](graph, fewer), 1) / removed

    def block(g):
        kept = np.flatnonzero(keep[g])
        width = _next_width(len(kept), floor[g], multiple)
        if width is None:
            return None
        chosen = kept[np.argsort(normalised[g][kept], kind="stable")[: len(kept) - width]]
        return float(np.mean(normalised[g][chosen])), g, chosen

    def ranked():
        blocks = [b for b in map(block, range(len(keep))) if b is not None]
        if cost is not None and blocks:
            savings = [saving(g, len(chosen)) for _, g, chosen in blocks]
            mean = float(np.mean(savings))
            blocks = [(s * mean / c, g, chosen) for (s, g, chosen), c in zip(blocks, savings)]
        heapq.heapify(blocks)
        return blocks

    heap = ranked()
    while graph.params(counts) > target_params and heap:
        _, g, chosen = heapq.heappop(heap)
        keep[g][chosen] = False
        counts[g] = int(keep[g].sum())
        if cost is not None:
            heap = ranked()
            continue
        nxt = block(g)
        if nxt is not None:
            heapq.heappush(heap, nxt)
    return keep
