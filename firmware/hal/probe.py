# Hardware facts for diagnostics: reset cause, heap regions, PSRAM, WiFi signal, chip. Each
# answers None where this port or board cannot tell. Imported lazily by diag.py, never in the
# scan path; every import is guarded so the same file runs on the host and in the WASM port.
import gc
import os

_RESETS = ("PWRON_RESET", "HARD_RESET", "WDT_RESET", "DEEPSLEEP_RESET", "SOFT_RESET", "BROWNOUT_RESET")


def reset_cause():
    """'pwron', 'hard', 'wdt', 'deepsleep', 'soft' (or 'brownout' where the port tells)."""
    try:
        import machine
        cause = machine.reset_cause()
    except Exception:  # ImportError on the host, or a port without reset_cause
        return None
    for name in _RESETS:
        if getattr(machine, name, None) == cause:
            return name[:-6].lower()
    return str(cause)


def heap():
    """The MicroPython heap, and the ESP-IDF data heap's lowest and largest free block."""
    if not hasattr(gc, "mem_free"):  # CPython: no such heap
        return None
    free = gc.mem_free()
    d = {"free": free, "alloc": gc.mem_alloc(), "total": free + gc.mem_alloc(),
         "idf_free": None, "idf_min_free": None, "idf_largest": None}
    try:
        import esp32  # pyright: ignore[reportMissingImports]
        regions = esp32.idf_heap_info(esp32.HEAP_DATA)  # [(total, free, largest, min_free)]
    except Exception:
        return d
    d["idf_free"] = sum(r[1] for r in regions)
    d["idf_largest"] = max([r[2] for r in regions] or [0])
    d["idf_min_free"] = sum(r[3] for r in regions)
    return d


def psram_bytes():
    """PSRAM the firmware uses, estimated from the heaps (SPIRAM builds put the Python heap
    there: a heap over 1 MB means PSRAM works; ~110 KB means it is missing or unused)."""
    if not hasattr(gc, "mem_free"):
        return None
    total = gc.mem_free() + gc.mem_alloc()
    try:
        import esp32  # pyright: ignore[reportMissingImports]
        big = [r[0] for r in esp32.idf_heap_info(esp32.HEAP_DATA) if r[0] > 1000000]
        if big:
            return max(big[0], total)
    except Exception:
        pass
    return total if total > 1000000 else 0


def wifi_rssi():
    try:
        import network  # pyright: ignore[reportMissingImports]
        sta = network.WLAN(network.STA_IF)
        if not sta.isconnected():
            return None
        return sta.status("rssi")
    except Exception:
        return None


def chip():
    """(machine string, chip key): ('ESP32S3 module with ESP32S3', 'esp32s3')."""
    try:
        m = os.uname().machine  # pyright: ignore[reportAttributeAccessIssue]
    except Exception:
        return None, None
    u = m.upper().replace("-", "")
    if "ESP32S3" in u:
        return m, "esp32s3"
    if "ESP32" in u:
        return m, "esp32"
    return m, None
