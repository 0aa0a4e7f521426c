"""Draining a work queue in batches: the MQTT link decides the scans that are waiting together
(one ledger commit), and the SQLite ledger commits the claims that are waiting together (one
fsync). Both take what has queued up while they were busy, so batches grow exactly with load."""
from __future__ import annotations

import queue
from typing import Any, Callable


def next_batch(q: Any, limit: int, size: Callable[[Any], int] = lambda item: 1) -> tuple[list, bool]:
    """Block for one item, then take whatever is already waiting, up to `limit` (counted with
    `size`). Returns (batch, stop): stop is True once the end marker None was taken (the batch
    holds what came before it, possibly nothing)."""
    first = q.get()
    if first is None:
        return [], True
    batch = [first]
    total = size(first)
    while total < limit:
        try:
            nxt = q.get_nowait()
        except queue.Empty:
            break
        if nxt is None:
            return batch, True
        batch.append(nxt)
        total += size(nxt)
    return batch, False
