"""The well-known ways an ESP32 camera scanner fails, each detected from what the device reports
(diag.info / diag.health / diag.camera / selftest / snapshot, and the text the board printed on
the serial line) and named WITH ITS FIX. One table: add a row here, and a line to docs/fieldkit.md.

Each row: id, title, fix, and a check(facts) that returns the evidence (a short string) or None.
`facts` is the report dict built by diagnostics.report.gather()."""
from __future__ import annotations

import re


def camera_state(f) -> dict | None:
    """The scanner's camera guard as it reported it (firmware with degraded mode): {fault,
    last_fault, open, retries, recoveries}; None from firmware that does not report it."""
    for src in ((f.get("health") or {}).get("camera"), (f.get("camera") or {}).get("state"),
                (f.get("info") or {}).get("camera")):
        if isinstance(src, dict):
            return src
    return None


def current_fault(f) -> dict | None:
    """The fault the scanner is degraded by now ({code, message, ...}), from diag or its HELLO."""
    cam = camera_state(f)
    if cam is not None:
        return cam.get("fault")
    return (f.get("hello") or {}).get("fault")


def _camera_works(f) -> bool:
    """The scanner says its camera works now: older camera errors in the texts are history
    (camera_intermittent reports them)."""
    cam = camera_state(f)
    return cam is not None and cam.get("fault") is None and (f.get("camera") or {}).get("ok") is not False


def _texts(f) -> str:
    """Every error-ish text the device gave: failures, camera error, self-test details, raw line."""
    parts = [f.get("raw_text", "")]
    fault = current_fault(f)
    if fault:
        parts.append("%s: %s" % (fault.get("code"), fault.get("message")))
    h = f.get("health") or {}
    parts += [str(x) for x in h.get("recent_failures", [])]
    cam = f.get("camera") or {}
    parts.append(str(cam.get("error", "")))
    st = f.get("selftest") or {}
    parts += [str((st.get(k) or {}).get("detail", "")) for k in ("camera", "leds", "buzzer", "decoder")]
    parts += [str(e) for e in f.get("errors", {}).values()]
    parts += f.get("logs", [])
    return "\n".join(parts)


def _search(pattern, f):
    m = re.search(pattern, _texts(f), re.I)
    return m.group(0).strip()[:120] if m else None


def _camera_not_found(f):
    if _camera_works(f):
        return None
    return _search(r".*(0x105|ESP_ERR_NOT_FOUND|camera probe failed).*", f)


def _sensor_unsupported(f):
    if _camera_works(f):
        return None
    return _search(r".*(0x20004|0x106\b|ESP_ERR_NOT_SUPPORTED|sensor not supported).*", f)


def _no_camera_driver(f):
    if _camera_works(f):
        return None
    return _search(r".*(no_camera_driver|has no camera module).*", f)


def _camera_init(f):
    if _camera_works(f) or _camera_not_found(f) or _sensor_unsupported(f) or _no_camera_driver(f):
        return None  # the specific rows above say more
    if _search(r"frame buffer malloc failed|fb_malloc|cam_dma_config|failed to allocate frame buffer", f):
        return None  # no_psram says more
    return _search(r".*(camera init failed|camera_init_failed|camera_closed).*", f)


_PROFILE_CODES = ("profile_missing", "profile_corrupt", "profile_invalid")


def _no_board_profile(f):
    fault = current_fault(f) or {}
    if fault.get("code") in _PROFILE_CODES:
        return "%s: %s" % (fault["code"], fault.get("message", ""))
    return None


def _capture_failing(f):
    fault = current_fault(f) or {}
    if fault.get("code") == "camera_capture_failed":
        return "%s (retried %s times so far)" % (fault.get("message"), fault.get("retries", 0))
    return None


def _intermittent(f):
    cam = camera_state(f)
    if not _camera_works(f) or not cam or not cam.get("recoveries"):
        return None
    return "the camera failed and came back %d time(s); last fault: %s" % (cam["recoveries"], cam.get("last_fault"))


def _brownout(f):
    e = _search(r".*brownout.*", f)
    if e:
        return e
    info = f.get("info") or {}
    if info.get("reset_cause") == "brownout":
        return "reset cause: brownout"
    return None


def _boot_loop(f):
    info = f.get("info") or {}
    n = info.get("boot_count")
    if isinstance(n, int) and n >= 2:
        return "%d boots in a row did not reach 'healthy' (reset cause %s)" % (n, info.get("reset_cause"))
    return None


def _no_psram(f):
    e = None if _camera_works(f) else _search(r".*(frame buffer malloc failed|fb_malloc|cam_dma_config|failed to allocate frame buffer).*", f)
    if e:
        return e
    h = f.get("health") or {}
    ps = h.get("psram_bytes")
    if ps == 0 and (f.get("profile") or {}).get("psram", {}).get("required", True):
        heap = (h.get("heap") or {}).get("total")
        return "no PSRAM in use (Python heap %s bytes)" % heap
    return None


def _wrong_profile(f):
    info = f.get("info") or {}
    chip, want = info.get("chip"), info.get("profile_chip")
    if chip and want and chip != want:
        return "the board is %s but its profile (%s) is for %s" % (chip, info.get("board"), want)
    return None


def _focus(f):
    s = f.get("snapshot") or {}
    if s.get("verdict") == "out_of_focus":
        return "snapshot sharpness %.2f (a focused code is above 0.35)" % s.get("sharpness", 0)
    return None


def _lighting(f):
    s = f.get("snapshot") or {}
    if s.get("verdict") in ("too_dark", "too_bright", "low_contrast"):
        return "snapshot %s: mean %s, contrast %s" % (s["verdict"], s.get("mean"), s.get("contrast"))
    return None


def _decoder(f):
    st = (f.get("selftest") or {}).get("decoder") or {}
    if st and not st.get("ok"):
        return "self-test decoder: %s" % st.get("detail")
    return None


def _bytecode_kernels(f):
    k = (f.get("info") or {}).get("kernels")
    if isinstance(k, str) and k.startswith("bytecode"):
        return k
    return None


def _accel_refused(f):
    a = (f.get("info") or {}).get("accel")
    if isinstance(a, str) and ("failed their check" in a or "did not finish" in a):
        return a
    return None


def _link_noise(f):
    """CRC errors and damaged frames mean a bad line; retransmits alone mostly mean a busy device,
    so they count only when more than half of the frames needed one."""
    link = f.get("link") or {}
    dev = ((f.get("health") or {}).get("link")) or {}
    bad = sum((d.get(k) or 0) for d in (link, dev) for k in ("crc_errors", "malformed"))
    rtx = (link.get("retransmits") or 0) + (dev.get("retransmits") or 0)
    sent = (link.get("sent") or 0) + (dev.get("sent") or 0)
    if bad or (sent >= 20 and rtx * 2 > sent):
        return "%d damaged frames (CRC/malformed), %d retransmits for %d frames sent" % (bad, rtx, sent)
    return None


def _low_heap(f):
    heap = (f.get("health") or {}).get("heap") or {}
    free, largest = heap.get("free"), heap.get("idf_largest")
    if isinstance(free, int) and free < 20000:
        return "only %d bytes of Python heap free" % free
    if isinstance(largest, int) and largest < 8000:
        return "largest free IDF block %d bytes (fragmented)" % largest
    return None


def _weak_wifi(f):
    rssi = (f.get("health") or {}).get("wifi_rssi")
    if isinstance(rssi, int) and rssi < -75:
        return "WiFi RSSI %d dBm" % rssi
    return None


def _dropped_frames(f):
    if (current_fault(f) or {}).get("code") == "camera_capture_failed":
        return None  # camera_capture_failing says more
    h = f.get("health") or {}
    frames, failed = h.get("frames") or 0, h.get("capture_failed") or 0
    if failed and failed * 20 > frames + failed:
        return "%d of %d captures failed" % (failed, frames + failed)
    return None


_RETRIES_BY_ITSELF = (" The scanner keeps its link up and retries the camera by itself: once it answers, "
                      "scanning resumes without a reboot (`scanbridge diag camera` retries at once).")

KNOWN = [
    ("no_board_profile", "No usable board profile (/board.json missing, corrupt or unknown)", _no_board_profile,
     "Deploy this board's profile: `scanbridge flash provision -p PORT --board ID` (`scanbridge flash "
     "boards` lists them). Until then the scanner keeps its USB link up but has no camera, LEDs or buzzer."),
    ("camera_not_found", "Camera not detected: probe failed (0x105 ESP_ERR_NOT_FOUND)", _camera_not_found,
     "Reseat the camera ribbon cable (latch open, contacts facing the board, push it fully in, latch "
     "closed). Check the board profile matches the board: `scanbridge flash provision --board ID`. "
     "Power: a 5 V supply of at least 1 A and a short data cable (see hardware/power.md)."
     + _RETRIES_BY_ITSELF),
    ("camera_sensor_unsupported", "Camera sensor not supported (0x20004 / 0x106)", _sensor_unsupported,
     "A clone or different sensor than the profile's: fit a genuine OV2640 module (see hardware/BOM.md)."),
    ("no_camera_driver", "This MicroPython image has no camera driver", _no_camera_driver,
     "Flash a camera build of MicroPython (`scanbridge flash image -p PORT IMAGE.bin --board ID`), then "
     "`scanbridge flash deploy`: stock MicroPython has no camera module."),
    ("camera_init_failed", "Camera init failed", _camera_init,
     "Reseat the camera ribbon cable and check the board profile (`scanbridge flash provision --board ID`); "
     "unplug for 5 s (a full power cycle, RST is not enough); make sure the image is a camera build of "
     "MicroPython (`scanbridge flash image`)." + _RETRIES_BY_ITSELF),
    ("camera_capture_failing", "Camera stopped giving frames (camera_capture_failed)", _capture_failing,
     "The camera opened but its frames stopped: reseat the ribbon cable and keep it from moving; check the "
     "5 V supply (brownout); a smaller frame_size needs less memory." + _RETRIES_BY_ITSELF),
    ("camera_intermittent", "Camera failed and came back (loose ribbon or power)", _intermittent,
     "The scanner recovered by itself, but it will fail again: reseat the ribbon cable and secure the "
     "latch, check the 5 V supply and cable (hardware/power.md)."),
    ("brownout", "Brownout resets (supply voltage dips)", _brownout,
     "Use a 5 V >= 1 A supply and a short, thick USB cable (not a hub port); add 100-470 uF across 5V/GND; "
     "keep the flash LED duty low; the app starts WiFi after the camera (hardware/power.md)."),
    ("boot_loop", "Reset loop (boots that never became healthy)", _boot_loop,
     "Usually power (see brownout) or a crash at start: read `scanbridge diag log`; after 3 bad boots "
     "the app stays at the REPL so `scanbridge flash deploy` can fix it."),
    ("no_psram", "No PSRAM / frame buffer malloc failed", _no_psram,
     "Set frame_size QVGA and fb_count 1 (profile); if the board was sold with PSRAM and shows none, "
     "replace it (a PSRAM-less ESP32-CAM cannot run the camera driver)."),
    ("wrong_board_profile", "Wrong board profile", _wrong_profile,
     "Provision with this board's profile: `scanbridge flash provision -p PORT --board ID` "
     "(`scanbridge flash boards` lists them)."),
    ("lens_focus", "Lens focused too far for a phone at ~10 cm", _focus,
     "Twist the OV2640 lens counter-clockwise in small steps (break the glue dot first) while "
     "running `scanbridge diag snapshot` until the code is sharp at 10 cm (hardware/mounting.md)."),
    ("lighting", "Too dark, too bright or washed out", _lighting,
     "Turn the illumination on (`config.set light true`), tilt away from glare, ask for full screen "
     "brightness; keep the scanner out of direct sunlight."),
    ("decoder_fault", "The device's decoder failed its self-test", _decoder,
     "Redeploy the firmware (`scanbridge flash deploy --force`); if it persists, report the self-test output."),
    ("slow_decoder", "The decoder runs as bytecode (no executable RAM for its viper kernels)", _bytecode_kernels,
     "The scanner reads, but 20-40x slower in the decoder's per-pixel loops: this MicroPython image leaves "
     "less executable RAM (IRAM) than the ~22 KB of viper kernels need. Flash an image with fewer IRAM "
     "functions or with the kernels frozen in, or use an ESP32-S3 board; reboot first (IRAM fragments "
     "after many soft resets). See docs/decoder.md, Viper."),
    ("accel_refused", "A hand-written Xtensa kernel gave wrong answers on this chip and is not used", _accel_refused,
     "The scanner reads with the viper kernels instead (slower). Report `scanbridge diag --json`: the machine "
     "code was checked only in a simulator (docs/xtensa-sim.md), and this chip disagrees with it."),
    ("link_noise", "Serial link errors (CRC errors / retransmits)", _link_noise,
     "Use a short USB data cable, another USB port, no unpowered hub; check both ends use 115200 baud."),
    ("low_heap", "Low or fragmented memory", _low_heap,
     "Reboot the scanner; if it comes back, report `scanbridge diag --json` (a leak)."),
    ("weak_wifi", "Weak WiFi signal", _weak_wifi,
     "Move the scanner or the access point closer, away from metal; use the serial link at this counter."),
    ("dropped_frames", "Many failed camera captures", _dropped_frames,
     "Reseat the camera ribbon; check power (brownout); lower frame_size."),
]


def detect(facts: dict) -> list[dict]:
    """The known failures these facts show, in table order, each with its evidence and fix."""
    found = []
    for fid, title, check, fix in KNOWN:
        evidence = check(facts)
        if evidence:
            found.append({"id": fid, "title": title, "evidence": evidence, "fix": fix})
    return found


def explain_fault(fault: dict | None) -> dict | None:
    """The finding for a scanner's fault code alone (what its HELLO/STATUS say), for the bridge
    and the counter page: {id, title, evidence, fix}; None when the scanner has no fault."""
    if not fault or not fault.get("code"):
        return None
    found = detect({"hello": {"fault": fault}})
    if found:
        return found[0]
    return {"id": fault["code"], "title": "Scanner fault %s" % fault["code"], "evidence": fault.get("message", ""),
            "fix": "Run `scanbridge diag -p PORT` (stop `scanbridge run` first) and follow its fix."}
