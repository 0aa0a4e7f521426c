"""Run the diagnostics on a connected scanner and put the answers together: identity, health,
camera, self-test, snapshot (decoded here with zxing-cpp), latency, link quality, and the known
failures they show (failures.detect) with their fixes. Output for a person or as JSON."""
from __future__ import annotations

import re
import statistics
import time
from pathlib import Path

from scanbridge_tools.diagnostics import failures
from scanbridge_tools.diagnostics import snapshot as snap
from scanbridge_tools.diagnostics.errors import DiagError

_FRAME_LINE = re.compile(r"~[^\n]*\n?")


def _try(facts, key, fn):
    try:
        facts[key] = fn()
    except DiagError as e:
        facts.setdefault("errors", {})[key] = "%s: %s" % (e.code, e.message)


def latency(t, count=10) -> dict:
    """Round trips of a `ping` COMMAND (the reliable path a SCAN/RESULT takes)."""
    rtts = []
    for _ in range(count):
        t0 = time.perf_counter()
        t.command("ping")
        rtts.append((time.perf_counter() - t0) * 1000)
    rtts.sort()
    return {"count": count, "min_ms": round(rtts[0], 1), "median_ms": round(statistics.median(rtts), 1),
            "max_ms": round(rtts[-1], 1)}


def take_snapshot(t, out: Path | None = None, step=1, timeout_s=30.0) -> dict:
    """Ask for a frame, wait for all its chunks, save it (PNG), analyse it."""
    r = t.command("diag.snapshot", {"step": step}, timeout_s=timeout_s)
    deadline = time.monotonic() + timeout_s
    while True:
        s = t.snapshots.get(r["id"])
        if s is not None and len(s["parts"]) == s["count"]:
            break
        if time.monotonic() > deadline:
            got = len(s["parts"]) if s else 0
            raise DiagError("snapshot_incomplete", "%d of %d chunks arrived" % (got, r["count"]),
                            "run it again; check the cable")
        t.pump(0.02)
    img = snap.to_image(snap.assemble(t.snapshots.pop(r["id"])))
    result = snap.analyse(img)
    if out is not None:
        out = Path(out)
        img.save(out)
        result["saved"] = str(out)
    return result


def gather(t, do_selftest=True, do_snapshot=True, snapshot_path=None, pings=10) -> dict:
    facts = {"transport": t.kind, "port": getattr(t, "port", None), "hello": t.hello}
    _try(facts, "info", lambda: t.command("diag.info"))
    _try(facts, "health", lambda: t.command("diag.health"))
    _try(facts, "camera", lambda: t.command("diag.camera", timeout_s=15))
    if do_selftest:
        _try(facts, "selftest", lambda: t.command("diag.selftest", timeout_s=30))
    if do_snapshot:
        _try(facts, "snapshot", lambda: take_snapshot(t, snapshot_path))
    if pings:
        _try(facts, "latency", lambda: latency(t, pings))
    t.pump(0.1)
    facts["link"] = t.stats()
    facts["logs"] = list(t.logs[-20:])
    facts["raw_text"] = _FRAME_LINE.sub("", t.raw_text())[-2000:]
    board = (facts.get("info") or {}).get("board")
    if board:
        try:
            from scanbridge_hw import profiles
            facts["profile"] = profiles.load(board)
        except (ImportError, ValueError):
            facts["profile"] = None
    facts["fault"] = failures.current_fault(facts)
    facts["findings"] = failures.detect(facts)
    return facts


def fault_line(fault: dict | None) -> str | None:
    """One line for a degraded scanner: its fault code, the driver's words, the retry state."""
    if not fault:
        return None
    line = "DEGRADED (cannot scan): %s: %s" % (fault.get("code"), fault.get("message"))
    if fault.get("retries") is not None:
        line += "; retried %s times" % fault["retries"]
    if fault.get("retry_in_ms"):
        line += ", next retry in %.0f s" % (fault["retry_in_ms"] / 1000)
    return line


def human(f: dict) -> str:
    L = []
    h = f.get("hello") or {}
    info = f.get("info") or {}
    L.append("scanner %s  (%s, board %s, fw %s, MicroPython %s)" % (
        h.get("device") or info.get("device"), f.get("port"), info.get("board", h.get("board")),
        info.get("fw", h.get("fw")), info.get("micropython", "?")))
    fl = fault_line(f.get("fault"))
    if fl:
        L.append("  " + fl)
    if info:
        L.append("  chip %s (profile: %s), reset cause %s, boot count %s, up %.0f s, link %s" % (
            info.get("chip"), info.get("profile_chip"), info.get("reset_cause"), info.get("boot_count"),
            (info.get("uptime_ms") or 0) / 1000, info.get("link")))
    hl = f.get("health") or {}
    if hl:
        heap = hl.get("heap") or {}
        L.append("  heap free %s (lowest seen %s, largest block %s), PSRAM %s, WiFi RSSI %s" % (
            heap.get("free"), heap.get("min_free_seen"), heap.get("idf_largest"), hl.get("psram_bytes"),
            hl.get("wifi_rssi")))
        L.append("  frames %s (%s/s), scans %s, results %s, no answer %s, capture failed %s" % (
            hl.get("frames"), hl.get("fps"), hl.get("scans"), hl.get("results"), hl.get("no_answer"),
            hl.get("capture_failed")))
        for x in hl.get("recent_failures") or []:
            L.append("    recent failure: %s" % x)
    cs = failures.camera_state(f)
    if cs and not cs.get("fault") and cs.get("recoveries"):
        L.append("  camera recovered %s time(s) after %s retries (last fault: %s)" % (
            cs["recoveries"], cs.get("retries"), cs.get("last_fault")))
    cam = f.get("camera") or {}
    if cam:
        L.append("  camera %s %s" % ("ok" if cam.get("ok") else "FAILED", cam.get("stats") or cam.get("error", "")))
    st = f.get("selftest") or {}
    if st:
        L.append("  self-test %s: " % ("passed" if st.get("ok") else "FAILED") + ", ".join(
            "%s %s" % (k, "ok" if (st.get(k) or {}).get("ok") else "FAIL (%s)" % (st.get(k) or {}).get("detail"))
            for k in ("camera", "leds", "buzzer", "decoder")))
    sn = f.get("snapshot") or {}
    if sn:
        codes = ", ".join(repr(d["text"][:40]) for d in sn.get("decoded", []))
        L.append("  snapshot %s: %s (mean %s, contrast %s, sharpness %s)%s" % (
            sn.get("saved", ""), sn.get("verdict"), sn.get("mean"), sn.get("contrast"), sn.get("sharpness"),
            (" read: " + codes) if codes else ""))
        L.append("    " + sn.get("advice", ""))
    lat = f.get("latency") or {}
    if lat:
        L.append("  round trip (ping x%d): min %s ms, median %s ms, max %s ms" % (
            lat["count"], lat["min_ms"], lat["median_ms"], lat["max_ms"]))
    lk = f.get("link") or {}
    dl = hl.get("link") or {}
    L.append("  link here: sent %s, retransmits %s, CRC errors %s; device side: retransmits %s, CRC errors %s" % (
        lk.get("sent"), lk.get("retransmits"), lk.get("crc_errors"), dl.get("retransmits"), dl.get("crc_errors")))
    for k, v in (f.get("errors") or {}).items():
        L.append("  could not run %s: %s" % (k, v))
    if f.get("findings"):
        L.append("")
        L.append("PROBLEMS FOUND")
        for x in f["findings"]:
            L.append("  * %s  [%s]" % (x["title"], x["id"]))
            L.append("    seen: %s" % x["evidence"])
            L.append("    fix:  %s" % x["fix"])
    else:
        L.append("")
        L.append("no known problem found")
    return "\n".join(L)
