"""When to prune and how far: a tiny serializable schedule over epochs (Zhu & Gupta 2017)."""
from __future__ import annotations

import dataclasses
import math

from dynhp_tf.arguments import integer

# Fraction of the final pruning reached at progress t in (0, 1].
CURVES = {
    "cubic": lambda t: 1.0 - (1.0 - t) ** 3,
    "linear": lambda t: t,
    "one_shot": lambda t: 1.0,
}


@dataclasses.dataclass(frozen=True)
class PruningSchedule:
    """Prunes at the end of epochs start_epoch, start_epoch + frequency, ..., end_epoch.

    Epochs are 0-based, as Keras passes them to callbacks. The target is reached at the end of
    `end_epoch`; the epochs after it fine-tune. `end_epoch=None` means the end of epoch
    ceil(0.6 * epochs) - 1, leaving the last 40% of training for fine-tuning.

    Example:
        >>> s = PruningSchedule(start_epoch=0, end_epoch=3)
        >>> [round(s.progress(e, epochs=6), 3) for e in range(4)]
        [0.578, 0.875, 0.984, 1.0]
    """

    start_epoch: int = 0
    end_epoch: int | None = None
    frequency: int = 1
    curve: str = "cubic"

    def __post_init__(self):
        # Epoch numbers may be numpy integers; NaN or 1.5 would silently never match an epoch.
        object.__setattr__(self, "start_epoch", integer("start_epoch", self.start_epoch, 0))
        if self.end_epoch is not None:
            object.__setattr__(self, "end_epoch", integer("end_epoch", self.end_epoch, self.start_epoch))
        object.__setattr__(self, "frequency", integer("frequency", self.frequency, 1))
        if self.curve not in CURVES:
            raise ValueError(f"schedule: expected one of {sorted(CURVES)}, got {self.curve!r}")

    def end(self, epochs: int) -> int:
        if self.end_epoch is not None:
            return self.end_epoch
        return max(self.start_epoch, math.ceil(0.6 * epochs) - 1)

    def check(self, epochs: int) -> None:
        """Raises ValueError when fit's `epochs` end before the schedule does."""
        if self.end(epochs) >= epochs:
            raise ValueError(
                f"end_epoch: the schedule ends at epoch {self.end(epochs)} but fit runs epochs 0.."
                f"{epochs - 1}; lower end_epoch or train for more epochs")

    def progress(self, epoch: int, epochs: int, done: float = 1.0) -> float | None:
        """Fraction of the final pruning to reach when `done` of `epoch` has trained (1.0: at its
        end, where the callback prunes); None: no event in that epoch."""
        end = self.end(epochs)
        if epoch < self.start_epoch or epoch > end:
            return None
        if epoch != end and (epoch - self.start_epoch) % self.frequency:
            return None
        return CURVES[self.curve]((epoch - self.start_epoch + done) / (end - self.start_epoch + 1))
