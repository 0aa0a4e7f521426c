# Diagnostics for `scanbridge diag`: identity, health, camera, link quality, live log, snapshot,
# self-test. register_all(commands) adds the handlers to the command registry; each takes
# (app, args) like every command. Hardware facts come from the board when it offers them, else
# from hal/probe.py; nothing here is in the scan path.
import gc
import sys

from scanbridge_fw import wire
from scanbridge_fw.compat import sleep_ms, ticks_diff, ticks_ms

try:
    from micropython import const
except ImportError:
    def const(__x):
        return __x

SELFTEST_TEXT = b"SCANBRIDGE-SELFTEST"
# The QR code (version 1, level M) of SELFTEST_TEXT: one int per row, MSB = leftmost module.
_SELFTEST_ROWS = (2087295, 1066305, 1525597, 1530461, 1529181, 1071425, 2086271, 5632, 1143289,
                  432535, 1919045, 1685807, 315320, 4263, 2086479, 1066030, 1530006, 1524791,
                  1524396, 1067677, 2086303)
_QR_N = const(21)
_SAMPLE = const(4)  # camera statistics look at every 4th pixel of every 4th row
_TEXT_MAX = const(80)  # characters of one failure text in diag.health
_REPLY_MAX = const(960)  # a REPLY body is at most wire.MAX_BODY (1024) with its id and ok

_state = {"min_free": None, "log": None, "failures": []}


def _probe():
    try:
        from scanbridge_fw.hal import probe
        return probe
    except ImportError:
        return None


def _ask(board, name, fallback):
    """board.<name>() when the board HAL offers it, else probe.<name>() or fallback."""
    fn = getattr(board, name, None)
    if fn is None:
        p = _probe()
        fn = getattr(p, name, None) if p is not None else None
    if fn is None:
        return fallback
    try:
        return fn()
    except Exception as e:  # a probe must not break the whole report
        return "error: %r" % (e,)


def _gc_free(board):
    fn = getattr(gc, "mem_free", None)  # MicroPython; CPython (virtual scanner) asks the board
    return fn() if fn is not None else board.mem_free()


def _note_heap(board):
    free = _gc_free(board)
    if free is None:
        return None
    if _state["min_free"] is None or free < _state["min_free"]:
        _state["min_free"] = free
    return free


async def _frame(app):
    """One frame for a diagnostic: through the app's camera guard (a faulty camera is retried at
    once: the technician may just have reseated the cable), else straight from the board."""
    cam = getattr(app, "camera", None)
    if cam is None:
        return await app.board.capture()
    frame = await cam.capture(now=True)
    if frame is None:
        from scanbridge_fw.commands import CommandError
        if cam.fault is not None:
            raise CommandError(cam.fault["code"], cam.fault["message"])
        raise CommandError("capture_failed", cam.last_failure or "the camera gave no frame")
    return frame


def _err_text(e):
    code = getattr(e, "code", None)
    return "%s: %s" % (code, getattr(e, "message", "")) if code else str(e)


def camera_state(app):
    """The camera guard's view for diag.info/health: current fault, the last one, retries."""
    cam = getattr(app, "camera", None)
    if cam is None:
        return None
    fault = cam.info()
    last = cam.last_fault if fault is None else None  # while faulty it is the same as fault
    return {"fault": fault, "last_fault": last[:_TEXT_MAX] if last else None, "open": cam.is_open,
            "retries": cam.retries, "recoveries": cam.recoveries}


def note_failure(text):
    """Remember a failure for diag.health (bounded to the last 8, each cut short: the health
    REPLY has to fit one frame)."""
    f = _state["failures"]
    f.append(text[:_TEXT_MAX])
    if len(f) > 8:
        f.pop(0)


# ---------------------------------------------------------------- handlers


def info(app, args):
    """Who this is: firmware, MicroPython, board profile, chip, unique id, reset cause."""
    board = app.board
    impl = sys.implementation
    machine_name, chip = _ask(board, "chip", (None, None))
    profile = getattr(board, "profile", None) or {}
    return {"fw": _fw(), "micropython": ".".join(str(x) for x in impl.version[:3]),
            "platform": sys.platform, "machine": machine_name, "chip": chip,
            "board": board.name, "profile_chip": profile.get("chip"),
            "camera_model": (profile.get("camera") or {}).get("model"),
            "device": board.unique_id(), "reset_cause": _ask(board, "reset_cause", None),
            "boot_count": _boot_count(), "uptime_ms": ticks_diff(ticks_ms(), app._started),
            "link": app.config.get("link"), "proto": wire.PROTOCOL_VERSION,
            "camera": camera_state(app), "kernels": _kernels(), "accel": _accel()}


def _kernels():
    """How the decoder's per-pixel kernels run: viper, python (a host), or bytecode and why."""
    try:
        from scanbridge_fw import qr
        return qr.KERNELS[:120]
    except Exception as e:  # the decoder does not even import: say that instead
        return "unavailable: %s" % _err_text(e)


def _accel():
    """Which hand-written Xtensa kernels the decoder uses (qr/accel.py), or "off: why"."""
    try:
        from scanbridge_fw.qr import accel
        return accel.STATUS[:120]
    except Exception as e:
        return "unavailable: %s" % _err_text(e)


def health(app, args):
    """Heap (free, lowest seen, largest block), PSRAM, WiFi, decode rate, recent failures, link."""
    _note_heap(app.board)
    gc.collect()
    heap = _ask(app.board, "heap", None)
    if not isinstance(heap, dict):
        heap = {"free": _gc_free(app.board)}
    if isinstance(heap, dict):
        heap["min_free_seen"] = _state["min_free"]
    up = ticks_diff(ticks_ms(), app._started)
    c = app.counts
    frames = c.get("frames", 0)
    fails = list(_state["failures"])
    if app.last_error:
        fails.append(app.last_error[:_TEXT_MAX])
    for r in app.results:
        if r.get("verdict") == "rejected":
            fails.append("rejected: %s" % r.get("reason"))
    link = app.link.status()
    w = getattr(app.link, "wire", None)
    if w is not None:
        link["recent_errors"] = [str(e) for e in w.errors]
    return _fit({"uptime_ms": up, "heap": heap, "psram_bytes": _ask(app.board, "psram_bytes", None),
            "wifi_rssi": _ask(app.board, "wifi_rssi", None),
            "frames": frames, "fps": (frames * 1000 // up) if up > 0 else 0,
            "scans": c.get("scans", 0), "results": c.get("results", 0),
            "no_answer": c.get("no_answer", 0), "capture_failed": c.get("capture_failed", 0),
            "decode_errors": c.get("decode_errors", 0), "recent_failures": fails[-8:],
            "decode_ms": [r.get("decode_ms") for r in app.results][-8:], "link": link,
            "camera": camera_state(app)})


def _fit(d, limit=_REPLY_MAX):
    """Drop the oldest failure texts (then the link's error list) until the REPLY fits a frame:
    a scanner with many long failures must still answer diag.health."""
    import json
    fails = d["recent_failures"]
    while len(json.dumps(d)) > limit:
        if fails:
            fails.pop(0)
        elif d["link"].get("recent_errors"):
            d["link"]["recent_errors"].pop(0)
        else:
            break
    return d


async def camera(app, args):
    """Camera state and one frame's statistics (brightness, contrast, sharpness)."""
    cfg = app.config
    out = {"frame_size": cfg.get("frame_size"), "light": cfg.get("light"),
           "frames": app.counts.get("frames", 0), "capture_failed": app.counts.get("capture_failed", 0)}
    info_fn = getattr(app.board, "camera_info", None)
    if info_fn is not None:
        out["driver"] = info_fn()
    try:
        frame = await _frame(app)
    except Exception as e:  # a camera fault (its code and the driver's message), HalError...
        out["ok"] = False
        out["error"] = _err_text(e)
        out["state"] = camera_state(app)
        note_failure("camera: %s" % out["error"])
        return out
    if frame is None:
        out["ok"] = False
        out["error"] = "capture returned nothing"
        return out
    out["state"] = camera_state(app)
    gray, w, h = frame
    out["ok"] = True
    out["width"] = w
    out["height"] = h
    out["stats"] = frame_stats(gray, w, h)
    return out


def frame_stats(gray, w, h):
    """Mean, min, max and a sharpness score (mean absolute step between sampled neighbours),
    over every _SAMPLE-th pixel: cheap enough for a diagnostic in bytecode."""
    total = 0
    n = 0
    lo = 255
    hi = 0
    edge = 0
    for y in range(0, h, _SAMPLE):
        row = y * w
        prev = gray[row]
        for x in range(0, w, _SAMPLE):
            v = gray[row + x]
            total += v
            n += 1
            if v < lo:
                lo = v
            if v > hi:
                hi = v
            d = v - prev
            edge += d if d > 0 else -d
            prev = v
    if n == 0:
        return {"mean": 0, "min": 0, "max": 0, "sharpness": 0}
    return {"mean": total // n, "min": lo, "max": hi, "sharpness": (edge * 10) // n}


def log(app, args):
    """args {on: bool}: send a LOG line for each scan, result and failure while on."""
    on = bool(args.get("on", True))
    old = _state["log"]
    if old and old in app.listeners:
        app.listeners.remove(old)  # functions take no attributes in MicroPython: keep the object
    _state["log"] = _logger(app) if on else None
    if on:
        app.listeners.append(_state["log"])
    app.link.send_log("diag: live log %s" % ("on" if on else "off"))
    return {"log": on}


def _logger(app):
    def fn(event, data):
        if event == "scan":
            text = "scan seq=%s decode_ms=%s len=%d" % (data.get("seq"), data.get("decode_ms"), len(data.get("payload", b"")))
        elif event == "result":
            text = "result seq=%s %s %s latency_ms=%s" % (data.get("seq"), data.get("verdict"), data.get("reason"), data.get("latency_ms"))
        else:
            text = "%s %s" % (event, data.get("reason", data.get("seq", "")))
            note_failure(text)
        app.link.send_log(text)
    return fn


async def snapshot(app, args):
    """Capture a frame and send it with snapshot.send() as a PGM file (gray, full resolution,
    centre-cropped to fit one snapshot). args: step (1 = every pixel, 2 = every 2nd)."""
    from scanbridge_fw import snapshot as snap
    from scanbridge_fw.commands import CommandError
    frame = await _frame(app)
    if frame is None:
        raise CommandError("capture_failed", "the camera gave no frame")
    gray, w, h = frame
    step = int(args.get("step", 1))
    if step < 1 or step > 8:
        raise CommandError("bad_args", "step must be 1..8")
    oh = h // step
    ow = min(w // step, (snap.MAX_BYTES - 32) // oh)  # centre crop when the frame is too big
    x0 = ((w // step - ow) // 2) * step
    head = b"P5\n%d %d\n255\n" % (ow, oh)
    out = bytearray(len(head) + ow * oh)
    out[:len(head)] = head
    pos = len(head)
    src = memoryview(gray)
    for y in range(oh):
        row = y * step * w + x0
        if step == 1:
            out[pos:pos + ow] = src[row:row + ow]  # a row at a time: no per-pixel work
        else:
            for x in range(ow):
                out[pos + x] = gray[row + x * step]
        pos += ow
    try:
        sid, count = await snap.send(snap.channel_of(app.link), out)
    except snap.SnapshotError as e:
        raise CommandError(e.code, e.message)
    return {"id": sid, "count": count, "bytes": len(out), "width": ow, "height": oh, "format": "pgm",
            "crop_x": x0}


async def selftest(app, args):
    """Camera frame, LEDs, buzzer, and the decoder on a built-in QR code."""
    board = app.board
    out = {}
    fw = fh = 0
    try:
        frame = await _frame(app)
        out["camera"] = {"ok": frame is not None, "detail": "" if frame is not None else "no frame"}
        if frame is not None:
            fw, fh = frame[1], frame[2]
        frame = None  # the driver's buffer: not kept past the next capture
    except Exception as e:
        out["camera"] = {"ok": False, "detail": _err_text(e)}
    try:
        for name in ("ok", "err", "busy"):
            board.led(name)
            await sleep_ms(150)
        board.led(None)
        out["leds"] = {"ok": True, "detail": "ok, err, busy lit 150 ms each: watch them"}
    except Exception as e:
        out["leds"] = {"ok": False, "detail": str(e)}
    try:
        board.tone(2000)
        await sleep_ms(120)
        board.tone(0)
        out["buzzer"] = {"ok": True, "detail": "2 kHz for 120 ms: listen"}
    except Exception as e:
        out["buzzer"] = {"ok": False, "detail": str(e)}
    # at the camera's resolution, so that the scanner's decoder (and its ~140 KB of buffers,
    # sized per resolution) serves the self-test too instead of being replaced twice
    gray, w, h = selftest_image(width=fw, height=fh)
    t0 = ticks_ms()
    try:
        codes = app.decode(gray, w, h)
        got = [bytes(c) for c in codes]
        ok = SELFTEST_TEXT in got
        out["decoder"] = {"ok": ok, "ms": ticks_diff(ticks_ms(), t0),
                          "detail": "read the built-in code" if ok else "got %r" % (got,)}
    except Exception as e:
        out["decoder"] = {"ok": False, "detail": "decoder raised %r" % (e,)}
    out["ok"] = all(out[k]["ok"] for k in ("camera", "leds", "buzzer", "decoder"))
    return out


def selftest_image(scale=3, quiet=4, width=0, height=0):
    """The built-in code as a gray frame (black modules 0, white 255): (buffer, w, h). The frame
    is width x height with the code in its middle when that is big enough, else just the code."""
    side = (_QR_N + 2 * quiet) * scale
    w = width if width >= side and height >= side else side
    h = height if width >= side and height >= side else side
    ox = (w - side) // 2 + quiet * scale
    oy = (h - side) // 2 + quiet * scale
    buf = bytearray(w * h)  # white, a row at a time: no second frame-sized copy
    white = b"\xff" * w
    for y in range(h):
        buf[y * w:(y + 1) * w] = white
    for r in range(_QR_N):
        bits = _SELFTEST_ROWS[r]
        for c in range(_QR_N):
            if bits & (1 << (_QR_N - 1 - c)):
                y0 = oy + r * scale
                x0 = ox + c * scale
                for dy in range(scale):
                    row = (y0 + dy) * w + x0
                    for dx in range(scale):
                        buf[row + dx] = 0
    return buf, w, h


def _fw():
    try:
        from scanbridge_fw.app import FW_VERSION
        return FW_VERSION
    except ImportError:
        return "unknown"


def _boot_count():
    try:
        from scanbridge_fw import bootguard
        return bootguard._read_count(bootguard.COUNT_PATH)
    except Exception:
        return None


def register_all(commands):
    commands.register("diag.info", info, "identity, versions, reset cause, boot count")
    commands.register("diag.health", health, "heap, PSRAM, WiFi, decode rate, failures, link quality")
    commands.register("diag.camera", camera, "camera state and one frame's statistics")
    commands.register("diag.log", log, "live log of scans and results (args: on)")
    commands.register("diag.snapshot", snapshot, "send a camera frame as SNAPSHOT chunks (args: step)")
    commands.register("diag.selftest", selftest, "camera, LEDs, buzzer, decoder on a built-in code")
