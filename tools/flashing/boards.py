"""Board profiles for the flash tool: hardware/boards/*.json through scanbridge_hw.profiles,
with the error a technician needs when the board is not in the list."""
from __future__ import annotations

import json
from pathlib import Path

from scanbridge_tools.flashing.errors import FlashError

BOARDS = Path(__file__).resolve().parents[2] / "hardware" / "boards"


def _all() -> dict:
    try:
        from scanbridge_hw import profiles
        return {p["id"]: p for p in profiles.load_all()}
    except ImportError:  # loader not installed: read the data files directly
        out = {}
        for path in sorted(BOARDS.glob("*.json")):
            p = json.loads(path.read_text())
            out[p.get("id", path.stem)] = p
        return out


def names() -> list[str]:
    return sorted(_all())


def get(board_id: str) -> dict:
    boards = _all()
    if board_id not in boards:
        raise FlashError("unknown_board", "no board profile %r" % board_id,
                         "known boards: %s (hardware/boards/)" % (", ".join(sorted(boards)) or "none"))
    return boards[board_id]
