"""A streaming rank-r approximation L R^T of a sum of outer products, unbiased.

Low-rank training (Gural, Nadeau, Tikekar, Murmann, arXiv 2009.03887) keeps the sum of a layer's
per-sample gradients, each an error x activation outer product, as two thin factors instead of a
full matrix: O((n + m) r) memory instead of O(n m), which is what a device with a few KB of
scratch RAM next to weights in flash can afford. Each new term A B^T (k columns; k = 1 for a
Dense sample) is folded in exactly and the result brought back to rank r:

    L R^T + A B^T = [L A] [R B]^T = Q_a (T_a T_b^T) Q_b^T      (two thin QR decompositions)
    T_a T_b^T = U diag(s) V^T                                  (small (r+k) x (r+k) SVD)

and diag(s) is replaced by a random matrix of rank r whose expectation is diag(s), with the
least variance (the paper's "optimal Kronecker-sum, unbiased" choice). Our derivation of that
reduction (`unbiased_reduction`): keep the q largest values exactly, where q is the fewest for which
every remaining value is at most c = (sum of remaining) / (r - q); of the remaining values keep r - q
at random, value i with probability s_i / c, each set to c. Each value's expectation is then s_i, and
the error E||X - diag(s)||^2 = c^2 (r - q) - sum s_i^2 is the least any unbiased rank-r X reaches
(Benzing et al. 2019 build the same optimum for k = 1 from a random rotation; its error is the same
c^2 (r - q) - sum s_i^2, and sampling a subset extends it to any k). With `unbiased=False` the
r largest values are kept (the biased, smallest-error truncation).

Example:
    >>> acc = LowRankAccumulator(n=10, m=120, rank=4, seed=0)
    >>> acc.add(dz[:, None], x[:, None])     # one Dense sample: error (10,), activation (120,)
    >>> gradient_sum = acc.value()            # (10, 120) ~ sum of dz x^T, exact while rank <= 4
"""
from __future__ import annotations

import numpy as np


def unbiased_reduction(s: np.ndarray, rank: int, rng: np.random.Generator) -> np.ndarray:
    """Random diagonal of at most `rank` non-zeros with expectation `s` and the least variance.

    Args:
        s: non-negative values sorted in decreasing order (singular values).
        rank: how many non-zeros the result may have.
        rng: the random source.

    Returns:
        An array like `s`: the kept values (the largest exactly, the others set to c) and zeros.
    """
    s = np.asarray(s, dtype=np.float64)
    if np.count_nonzero(s) <= rank:
        return s.copy()
    tail = np.cumsum(s[::-1])[::-1]  # tail[q] = sum of s[q:]
    q = next(q for q in range(rank) if s[q] * (rank - q) <= tail[q])
    c = tail[q] / (rank - q)
    # Systematic sampling: r - q draws, index i is taken with probability s_i / c <= 1, never twice.
    edges = np.concatenate([[0.0], np.cumsum(s[q:] / c)])
    edges *= (rank - q) / edges[-1]  # exactly r - q despite rounding, so no draw falls past the end
    points = rng.uniform() + np.arange(rank - q)
    taken = np.searchsorted(edges, points, side="right") - 1
    out = np.zeros_like(s)
    out[:q] = s[:q]
    out[q + taken] = c
    return out


class LowRankAccumulator:
    """Streaming sum of outer products held as L R^T with L (n, rank) and R (m, rank).

    Args:
        n: rows (a layer's output units or channels).
        m: columns (its inputs, or kernel height x width x input channels for a convolution).
        rank: r, the number of columns of L and R.
        unbiased: reduce with `unbiased_reduction` (True) or keep the r largest values (False).
        seed: seed of the reduction's random source.
    """

    def __init__(self, n: int, m: int, rank: int = 4, *, unbiased: bool = True, seed: int = 0):
        if rank < 1:
            raise ValueError(f"rank must be an integer >= 1, got {rank!r}")
        self.n, self.m, self.rank, self.unbiased = int(n), int(m), int(rank), bool(unbiased)
        self.rng = np.random.default_rng(seed)
        self.reset()

    def reset(self):
        """Forget everything added (after the update was written)."""
        self.left = np.zeros((self.n, self.rank))
        self.right = np.zeros((self.m, self.rank))

    def add(self, a: np.ndarray, b: np.ndarray):
        """Fold in a @ b.T, with a of shape (n, k) and b of shape (m, k); k >= 1 terms at once."""
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        if a.ndim != 2 or b.ndim != 2 or a.shape[0] != self.n or b.shape[0] != self.m or a.shape[1] != b.shape[1]:
            raise ValueError(f"add expects a (n={self.n}, k) and b (m={self.m}, k); got {a.shape} and {b.shape}")
        if a.shape[1] > min(self.n, self.m):  # many terms (a convolution's pixels): same sum, fewer columns
            a, b = (np.eye(self.n), b @ a.T) if self.n <= self.m else (a @ b.T, np.eye(self.m))
        qa, ta = np.linalg.qr(np.concatenate([self.left, a], axis=1))
        qb, tb = np.linalg.qr(np.concatenate([self.right, b], axis=1))
        u, s, vt = np.linalg.svd(ta @ tb.T, full_matrices=False)
        if self.unbiased:
            s = unbiased_reduction(s, self.rank, self.rng)
        order = np.argsort(-s, kind="stable")[:self.rank]  # the (at most rank) non-zeros first
        root = np.sqrt(s[order])  # split each value evenly between the factors, for balanced norms
        self.left.fill(0.0)
        self.right.fill(0.0)
        self.left[:, :len(order)] = (qa @ u[:, order]) * root
        self.right[:, :len(order)] = (qb @ vt.T[:, order]) * root

    def value(self) -> np.ndarray:
        """The approximated sum, (n, m)."""
        return self.left @ self.right.T

    def state_bytes(self, bytes_per_value: int = 4) -> int:
        """Bytes of the factors on a device storing them as float32 (default)."""
        return (self.n + self.m) * self.rank * bytes_per_value
