"""Board profiles: the memory and TFLM-library facts of one microcontroller board.

Each board is a TOML file in the `boards` package (so it ships inside the wheel). The
top-level fields and the `[tflm]` table describe memory and the TFLM library; other tables
(such as `[firmware]`) belong to the firmware generator and are kept as plain dicts.

Example:
    >>> from dynhp_tf.converters.boards import load_board
    >>> board = load_board("esp32")
    >>> board.flash_bytes > board.base_flash_bytes
    True
"""

from __future__ import annotations

import dataclasses
from typing import Any

from dynhp_tf.converters.errors import UnknownBoardError
# One reader of boards/*.toml for training and export (DynHPCallback(target_board=...)).
from dynhp_tf.board_profiles import arena_with_margin, board_names, read_profile




@dataclasses.dataclass(frozen=True)
class Board:
    """Memory budget and TFLM facts of one board (all sizes in bytes).

    Args:
        name: Short name used on the command line (`--board esp32`).
        title: Human-readable board name.
        mcu: The microcontroller.
        ram_bytes: RAM available to the application.
        flash_bytes: Flash available to the application image.
        base_flash_bytes: Flash a bare firmware with TFLM linked (no model) already uses.
        base_ram_bytes: RAM a bare firmware already uses (static data, stacks, OS).
        arena_budget_bytes: Largest tensor arena the firmware can allocate.
        static_arena_max_bytes: Largest arena that may be allocated statically.
        arena_margin: Fraction added to the host-measured arena (device kernels may
            need scratch buffers the host reference kernels do not).
        width_multiple: Channel multiple the board's optimized kernels prefer.
        tflm_library: The TFLM build the firmware links.
        per_channel_dense: Whether that library runs per-channel-quantized
            FULLY_CONNECTED correctly.
        tables: Every other TOML table, untouched (e.g. `firmware`).
    """

    name: str
    title: str
    mcu: str
    ram_bytes: int
    flash_bytes: int
    base_flash_bytes: int
    base_ram_bytes: int
    arena_budget_bytes: int
    static_arena_max_bytes: int
    arena_margin: float
    width_multiple: int
    tflm_library: str
    per_channel_dense: bool
    tables: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False)

    def arena_with_margin(self, arena_bytes: int) -> int:
        """`arena_bytes` plus the board's margin, rounded up to a multiple of 16."""
        return arena_with_margin(arena_bytes, self.arena_margin)

    def summary(self) -> str:
        """One line for `dynhp-export --list-boards`."""
        kib = 1024
        dense = "per-channel" if self.per_channel_dense else "per-tensor"
        return (
            f"{self.name:<10} {self.title}: RAM {self.ram_bytes // kib} KiB, "
            f"flash {self.flash_bytes // kib} KiB, arena budget "
            f"{self.arena_budget_bytes // kib} KiB, dense layers {dense} "
            f"({self.tflm_library})"
        )


def list_boards() -> list[str]:
    """Names of all board profiles, sorted."""
    return board_names()


def load_board(name: str) -> Board:
    """Load the profile called `name`; raises `UnknownBoardError` listing known boards."""
    try:
        data = read_profile(name)
    except KeyError:
        raise UnknownBoardError(name, board_names()) from None
    return board_from_dict(data)


def board_from_dict(data: dict[str, Any]) -> Board:
    """Build a `Board` from parsed TOML; missing fields raise `ValueError` naming them."""
    tflm = data.get("tflm", {})
    flat = {
        **{k: v for k, v in data.items() if not isinstance(v, dict)},
        "tflm_library": tflm.get("library"),
        "per_channel_dense": tflm.get("per_channel_dense"),
    }
    field_names = [f.name for f in dataclasses.fields(Board) if f.name != "tables"]
    missing = [name for name in field_names if flat.get(name) is None]
    if missing:
        raise ValueError(
            f"board profile '{data.get('name', '?')}' lacks fields: {', '.join(missing)}"
        )
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    return Board(**{name: flat[name] for name in field_names}, tables=tables)
