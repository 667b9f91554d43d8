"""Which neurons go: a global ranking across groups toward an exact parameter target."""
from __future__ import annotations

import heapq

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


def select(graph: PruningGraph, keep: list[np.ndarray], scores: list[np.ndarray], target_params: float,
           min_neurons: int = 1, multiple: int = 1) -> list[np.ndarray]:
    """Removes the least important neurons until the network has at most `target_params`.

    Scores are normalised within each group (divided by the mean over its kept neurons) and
    ranked globally. Widths only step between multiples of `multiple`, so neurons leave in
    blocks; a block's score is its mean. Pruned neurons never come back: the result is a
    subset of `keep`. Stops as soon as the target is met, so it overshoots by less than one
    block.
    """
    keep = [k.copy() for k in keep]
    floor = floors(graph, min_neurons, multiple)
    normalised = []
    for k, s in zip(keep, scores):
        mean = float(np.mean(s[k])) if k.any() else 0.0
        normalised.append(np.asarray(s, float) / (mean if mean > 0 else 1.0))

    def block(g):
        kept = np.flatnonzero(keep[g])
        width = _next_width(len(kept), floor[g], multiple)
        if width is None:
            return None
        chosen = kept[np.argsort(normalised[g][kept], kind="stable")[: len(kept) - width]]
        return float(np.mean(normalised[g][chosen])), g, chosen

    heap = [b for b in map(block, range(len(keep))) if b is not None]
    heapq.heapify(heap)
    counts = [int(k.sum()) for k in keep]
    while graph.params(counts) > target_params and heap:
        _, g, chosen = heapq.heappop(heap)
        keep[g][chosen] = False
        counts[g] = int(keep[g].sum())
        nxt = block(g)
        if nxt is not None:
            heapq.heappush(heap, nxt)
    return keep
