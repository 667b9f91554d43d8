"""Does the exported model fit the board? Flash, RAM and arena against the board's limits.

- flash: flatbuffer bytes + what a bare firmware already takes (`base_flash_bytes`)
- RAM:   arena (with the board's margin) + what a bare firmware already takes (`base_ram_bytes`)
- arena: arena (with margin) against the largest arena the firmware can allocate

When something does not fit, `compression_to_fit` estimates the DynHP compression factor
that would: today's compression x (model bytes needed / bytes available to the model),
taking the worst resource. It assumes the model's bytes shrink in proportion to its
parameter count, which holds for the flatbuffer (weights dominate it). The arena holds
activations, which shrink with layer widths, i.e. more slowly than parameters, so for an
arena-bound model read the figure as a lower bound.

Example:
    >>> report = check_fit(board, flatbuffer_bytes=30_000, arena_bytes=2_000)
    >>> report.fits
    True
"""

from __future__ import annotations

import dataclasses
import math

from dynhp_tf.converters.boards import Board
from dynhp_tf.converters.errors import DoesNotFitError


@dataclasses.dataclass(frozen=True)
class FitRow:
    """One resource: `model_bytes` + `base_bytes` = `used`, against `limit`."""

    resource: str
    model_bytes: int
    base_bytes: int
    limit: int

    @property
    def used(self) -> int:
        return self.model_bytes + self.base_bytes

    @property
    def headroom(self) -> int:
        return self.limit - self.used

    @property
    def fits(self) -> bool:
        return self.used <= self.limit

    def as_dict(self) -> dict:
        return {
            "resource": self.resource, "model_bytes": self.model_bytes,
            "base_bytes": self.base_bytes, "used": self.used, "limit": self.limit,
            "headroom": self.headroom, "fits": self.fits,
        }


@dataclasses.dataclass(frozen=True)
class FitReport:
    board: str
    rows: tuple[FitRow, ...]
    compression: float
    compression_to_fit: float | None

    @property
    def fits(self) -> bool:
        return all(row.fits for row in self.rows)

    def as_dict(self) -> dict:
        return {
            "board": self.board, "fits": self.fits, "compression": self.compression,
            "compression_to_fit": self.compression_to_fit,
            "rows": [row.as_dict() for row in self.rows],
        }




def check_fit(
    board: Board, *, flatbuffer_bytes: int, arena_bytes: int, compression: float = 1.0
) -> FitReport:
    """Compare the model against `board`.

    Args:
        board: The board profile.
        flatbuffer_bytes: Size of the .tflite flatbuffer.
        arena_bytes: Arena the firmware will allocate (already including the margin).
        compression: The model's current compression factor (dense / compact params).
    """
    rows = (
        FitRow("flash", flatbuffer_bytes, board.base_flash_bytes, board.flash_bytes),
        FitRow("RAM", arena_bytes, board.base_ram_bytes, board.ram_bytes),
        FitRow("arena", arena_bytes, 0, board.arena_budget_bytes),
    )
    ratios = []
    for row in rows:
        available = row.limit - row.base_bytes
        ratios.append(math.inf if available <= 0 else row.model_bytes / available)
    worst = max(ratios)
    compression_to_fit = None if worst <= 1.0 else compression * worst
    return FitReport(board.name, rows, compression, compression_to_fit)


def require_fit(report: FitReport, hint=None) -> FitReport:
    """Return `report` if everything fits, else raise `DoesNotFitError` (with `hint()`'s text)."""
    if not report.fits:
        raise DoesNotFitError(report, None if hint is None else hint())
    return report


def fit_table(report: FitReport) -> str:
    """Markdown table: resource, model, base, used, limit, headroom, verdict."""
    lines = [
        "| resource | model | base firmware (estimate) | used | limit | headroom | fits |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in report.rows:
        percent = 100.0 * row.headroom / row.limit if row.limit else 0.0
        lines.append(
            f"| {row.resource} | {row.model_bytes:,} | {row.base_bytes:,} | {row.used:,} "
            f"| {row.limit:,} | {row.headroom:,} ({percent:.0f}%) | "
            f"{'yes' if row.fits else 'NO'} |"
        )
    return "\n".join(lines)
