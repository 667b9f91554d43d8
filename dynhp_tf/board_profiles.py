"""Board profiles as data: the one reader of `boards/*.toml` for training and export.

The exporter (`dynhp_tf.converters.boards`) and the training side (`DynHPCallback(target_board=...)`)
read the same files through `read_profile`, and turn a board into model limits through
`model_limits`, so the figures the callback aims at are the ones the fit check applies.

Example:
    >>> model_limits(read_profile("nano33ble"))["flatbuffer_bytes"]
    833040
"""
from __future__ import annotations

import importlib.resources
import math
import tomllib

BOARDS_PACKAGE = "dynhp_tf.boards"


def _files() -> dict:
    files = importlib.resources.files(BOARDS_PACKAGE)
    return {entry.name.removesuffix(".toml"): entry for entry in files.iterdir() if entry.name.endswith(".toml")}


def board_names() -> list[str]:
    """Names of all board profiles, sorted."""
    return sorted(_files())


def read_profile(name: str) -> dict:
    """The parsed TOML of board `name`; `KeyError` (with the known names) when there is none."""
    files = _files()
    if name not in files:
        raise KeyError(f"unknown board '{name}'; known boards: {', '.join(sorted(files))}")
    return tomllib.loads(files[name].read_text(encoding="utf-8"))


def arena_with_margin(arena_bytes: int, margin: float) -> int:
    """`arena_bytes * (1 + margin)`, rounded up to a multiple of 16 bytes (TFLM alignment)."""
    padded = math.ceil(arena_bytes * (1.0 + margin))
    return (padded + 15) // 16 * 16


def model_limits(profile: dict) -> dict[str, int]:
    """What one model may take on the board, in the units the estimator predicts.

    `flatbuffer_bytes`: flash left after the bare firmware. `arena_bytes`: the largest
    host-measured arena whose value with the board's margin fits both the arena budget and
    the RAM left after the bare firmware (the fit check's three rows).
    """
    room = min(profile["arena_budget_bytes"], profile["ram_bytes"] - profile["base_ram_bytes"])
    arena = int(room / (1.0 + profile["arena_margin"])) // 16 * 16
    while arena > 0 and arena_with_margin(arena, profile["arena_margin"]) > room:
        arena -= 16
    return {"flatbuffer_bytes": profile["flash_bytes"] - profile["base_flash_bytes"], "arena_bytes": max(0, arena)}
