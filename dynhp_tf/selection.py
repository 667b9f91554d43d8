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


def _uniform_ratio(graph: PruningGraph, target_params: float) -> float:
    """The largest ratio r such that every group at ceil(r * width) stays within `target_params`."""
    widths = lambda r: [max(1, math.ceil(r * n)) for n in graph.sizes]  # noqa: E731
    low, high = 0.0, 1.0
    for _ in range(40):  # params grow with the ratio: bisect
        middle = (low + high) / 2
        low, high = (middle, high) if graph.params(widths(middle)) <= target_params else (low, middle)
    return low


# A layer left with fewer neurons than this (or than its width, if narrower) starves the layers
# after it: the LeNet-5-style CNN at 10x, conv1 at 2 of 6 filters: 85.64% int8; at 6, conv2 at 7:
# 86.40% (3 seeds; docs/benchmarks.md, session 11).
FLOOR_NEURONS = 8


def layer_floors(graph: PruningGraph, target_params: float, share: float, base: list[int],
                 multiple: int = 1, neurons: int = FLOOR_NEURONS) -> list[int]:
    """Per group, the fewest neurons pruning to `target_params` may leave (the layer floor).

    Each group keeps `share` of the width that pruning every group by one ratio to the target
    would leave it, and at least `neurons` (or its width), never less than `base` (the
    min_neurons floors). Global ranking alone may empty a small early layer (a CNN's 6 conv1
    filters went to 1 in 2 of 3 seeds) while wide layers keep plenty. The floor is a preference,
    the target is not: when the floors together exceed the target they shrink together, down to
    `base`, until they fit. Rounded down to the width multiple. The floors follow a parameter
    target only: conv1's kept maps cost arena (the CNN at 10x: 8,400 bytes against 4,832 at 2
    filters), and under a tight arena limit a floor the limit cannot see would shrink every
    other layer instead (to 4,942 params, not 40,393, under 8,000 arena bytes); so under device
    limits `DynHPCallback` passes neurons=1 where the floor would cost parameters.

    Example:
        >>> layer_floors(graph, target_params=5_190, share=0.7, base=[1, 1, 1])  # the CNN at 10x
        [6, 7, 21]
    """
    ratio = _uniform_ratio(graph, target_params)
    wanted = [max(share * ratio * n, min(n, neurons)) for n in graph.sizes]
    floor = lambda t: [min(n, max(b, math.ceil(t * w) // multiple * multiple))  # noqa: E731
                       for n, b, w in zip(graph.sizes, base, wanted)]
    low, high = 0.0, 1.0
    if graph.params(floor(high)) <= target_params:
        return floor(high)
    for _ in range(30):  # the floors grow with t: bisect for the largest t that fits
        middle = (low + high) / 2
        low, high = (middle, high) if graph.params(floor(middle)) <= target_params else (low, middle)
    return floor(low)


# What a neuron costs when ranking by score per cost: the network's count at given widths.
COSTS = {"params": PruningGraph.params, "macs": PruningGraph.macs}


def select(graph: PruningGraph, keep: list[np.ndarray], scores: list[np.ndarray], target_params: float,
           min_neurons: int = 1, multiple: int = 1, cost: str | None = None,
           layer_floor: float = 0.0, floor_neurons: int = FLOOR_NEURONS) -> list[np.ndarray]:
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
        layer_floor: 0 (default, off) or a share in (0, 1]: no group is pruned below
            `layer_floors` (that share of its uniformly pruned width, and `floor_neurons`).

    Example:
        >>> keep = select(graph, keep, scores, target_params=20_000, cost="params")
    """
    if cost is not None and cost not in COSTS:
        raise ValueError(f"cost: expected one of {sorted(COSTS)} or None, got {cost!r}")
    keep = [k.copy() for k in keep]
    floor = floors(graph, min_neurons, multiple)
    if layer_floor:
        floor = layer_floors(graph, target_params, layer_floor, floor, multiple, floor_neurons)
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
