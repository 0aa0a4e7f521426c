"""Batch mode: many boards in a row, each flashed (optionally), deployed and provisioned, with
one printed label line per device: id, MAC, firmware, board, site."""
from __future__ import annotations

import time

from scanbridge_tools.flashing.errors import FlashError


def mac_from_unique_id(uid: str) -> str:
    """machine.unique_id() hex on ESP32 is the MAC: 240ac4123456 -> 24:0a:c4:12:34:56."""
    if len(uid) == 12 and all(c in "0123456789abcdef" for c in uid.lower()):
        return ":".join(uid[i:i + 2] for i in range(0, 12, 2)).lower()
    return uid


def label_line(device_id: str, mac: str, fw: str, board: str, site: str) -> str:
    return "LABEL  %-16s  MAC %-17s  fw %-8s  %s  site %s" % (device_id, mac, fw, board, site)


def device_ids(pattern: str, start: int, count: int) -> list[str]:
    try:
        return [pattern.format(n=n) for n in range(start, start + count)]
    except (KeyError, IndexError, ValueError) as e:
        raise FlashError("bad_option", "--id-pattern %r: %s (use {n}, e.g. scan-{n:03d})" % (pattern, e))


def run_batch(ids, one_board, wait_for_board=None, out=print) -> list[dict]:
    """For each id: wait_for_board(id) -> port (None stops), one_board(port, id) -> record.
    A failed board is reported and the batch goes on with the next one."""
    done = []
    for device_id in ids:
        port = wait_for_board(device_id) if wait_for_board else None
        if wait_for_board and port is None:
            break
        t0 = time.monotonic()
        try:
            rec = one_board(port, device_id)
        except FlashError as e:
            out("FAILED %s on %s: %s" % (device_id, port, e))
            done.append({"id": device_id, "port": port, "ok": False, "error": e.as_dict()})
            continue
        rec.update({"id": device_id, "port": port, "ok": True, "seconds": round(time.monotonic() - t0, 1)})
        out(label_line(device_id, rec["mac"], rec["fw"], rec["board"], rec["site"]))
        done.append(rec)
    return done
