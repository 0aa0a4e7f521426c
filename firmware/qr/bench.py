# Decoder benchmark that runs the same on the board, in the WebAssembly MicroPython and in
# CPython: frames decoded per second and where the time goes (per-pixel kernels vs the rest,
# and per stage).  Used by the firmware `bench` command and by docs/decoder.md's estimate.
import time

from scanbridge_fw import qr

from . import accel, decoder, kernels

def _clock_us():
    f = getattr(time, "ticks_us", None)  # MicroPython
    if f is not None:
        return f()
    return int(getattr(time, "perf_counter")() * 1000000)  # CPython


def _elapsed_us(t0):
    """Microseconds since t0 (ticks wrap on MicroPython; ticks_diff handles that)."""
    now = _clock_us()
    diff = getattr(time, "ticks_diff", None)
    return diff(now, t0) if diff is not None else now - t0


KERNELS = ("block_stats", "block_smooth", "find_rows", "confirm_hits",
           "sample_grid", "fit", "find_alignment",
           "function_template", "read_codewords", "rs_locate", "nearest_word",
           "grid_word", "deinterleave", "rs_forney")
ACCEL = ("block_stats", "find_rows")  # accel: the hand-written versions a device may use
_XT = " (xtensa)"  # their tallies: "block_stats (xtensa)", ...


class _Timed:
    """Wraps a kernel to add its wall time and call count to a tally."""

    def __init__(self, fn, tally, name):
        self.fn = fn
        self.tally = tally
        self.name = name

    def __call__(self, *args):
        t0 = _clock_us()
        r = self.fn(*args)
        t = self.tally[self.name]
        t[0] += _elapsed_us(t0)
        t[1] += 1
        return r


def _threshold(img, out, t):
    n = len(img)
    i = 0
    while i < n:
        if img[i] <= t:
            out[i] = 1
        else:
            out[i] = 0
        i += 1


def calibrate(frame):
    """Milliseconds (best of 5) of a plain bytecode threshold loop over the frame: the yardstick
    that ties this interpreter to the field notes' figures (5.0 ms for 76,800 pixels on an x64
    build), so a bench run on a loaded machine can still be scaled to the ESP32."""
    out = bytearray(len(frame))
    best = 0
    for _ in range(5):
        t0 = _clock_us()
        _threshold(frame, out, 128)
        t = _elapsed_us(t0)
        if best == 0 or t < best:
            best = t
    return best / 1000


def _wrap(per_kernel):
    tally = {}
    saved = {}
    if per_kernel:
        for name in KERNELS:
            tally[name] = [0, 0]
            saved[name] = getattr(kernels, name)
            setattr(kernels, name, _Timed(saved[name], tally, name))
        for name in ACCEL:  # the ESP32's hand-written kernels, those in use
            fn = getattr(accel, name)
            if fn is not None:
                tally[name + _XT] = [0, 0]
                saved[name + _XT] = fn
                setattr(accel, name, _Timed(fn, tally, name + _XT))
    return tally, saved


def _unwrap(saved):
    for name in saved:
        if name.endswith(_XT):
            setattr(accel, name[:-len(_XT)], saved[name])
        else:
            setattr(kernels, name, saved[name])


def _split(tally, total_us, n):
    kern_us = 0
    per = {}
    for name in tally:
        kern_us += tally[name][0]
        per[name] = [tally[name][0] / 1000 / n, tally[name][1] / n]
    return kern_us, per


def run(frames, width, height, per_kernel=True, mode="full", dec=None):
    """Decode every frame once; returns {"frames", "decoded", "fps", "ms_per_frame",
    "kernel_ms", "other_ms", "kernels": {name: [ms, calls]}, "fit_steps"} (times per frame).

    mode "full" is Decoder.decode (every strategy until a read), "scan" the budgeted one-pass
    Decoder.scan of the scanner loop.  With per_kernel the kernels are timed one by one (a
    small overhead per call); the split between per-pixel kernels and the rest is what the
    ESP32 estimate scales differently."""
    tally, saved = _wrap(per_kernel)
    try:
        if dec is None:
            dec = decoder.Decoder(width, height)
        fn = dec.scan if mode == "scan" else dec.decode
        steps0 = dec.fitter.steps
        n = 0
        decoded = 0
        total = 0
        for frame in frames:
            t0 = _clock_us()
            found = fn(frame)
            total += _elapsed_us(t0)
            n += 1
            if found:
                decoded += 1
    finally:
        _unwrap(saved)
    if n == 0:
        return {"frames": 0, "decoded": 0, "fps": 0.0, "ms_per_frame": 0.0}
    kern_us, per = _split(tally, total, n)
    return {
        "frames": n,
        "decoded": decoded,
        "fps": n * 1000000 / total if total else 0.0,
        "ms_per_frame": total / 1000 / n,
        "kernel_ms": kern_us / 1000 / n,
        "other_ms": (total - kern_us) / 1000 / n,
        "kernels": per,
        "fit_steps": (dec.fitter.steps - steps0) / n,
    }


def stream(scenes, width, height, max_frames=16, per_kernel=True, expected=None):
    """Frames-to-first-read of the streaming mode: each scene (one frame) is shown to
    Decoder.scan again and again, as a camera would see a code held still, until it reads or
    max_frames pass.  One decoder for all scenes, in order (its memory of the last good pass
    carries over, as at a counter).  `expected` (one payload per scene) counts only the right
    read.  Returns {"scenes", "read", "frames_to_read": [n or 0 per scene], "frames",
    "ms_per_frame", "kernel_ms", "other_ms", "ms_to_read": [ms per scene, 0 if unread]}."""
    tally, saved = _wrap(per_kernel)
    counts = []
    to_read = []
    total = 0
    frames = 0
    try:
        dec = decoder.Decoder(width, height)
        for idx in range(len(scenes)):
            frame = scenes[idx]
            spent = 0
            got = 0
            for k in range(max_frames):
                t0 = _clock_us()
                found = dec.scan(frame)
                spent += _elapsed_us(t0)
                frames += 1
                if found and (expected is None or expected[idx] in found):
                    got = k + 1
                    break
            total += spent
            counts.append(got)
            to_read.append(spent / 1000 if got else 0)
    finally:
        _unwrap(saved)
    kern_us, per = _split(tally, total, max(1, frames))
    return {
        "scenes": len(scenes),
        "read": sum(1 for c in counts if c),
        "frames_to_read": counts,
        "ms_to_read": to_read,
        "frames": frames,
        "ms_per_frame": total / 1000 / max(1, frames),
        "kernel_ms": kern_us / 1000 / max(1, frames),
        "other_ms": (total - kern_us) / 1000 / max(1, frames),
        "kernels": per,
    }


async def command(app, args):
    """Firmware `bench` command: capture args["frames"] (default 10) frames from the camera and
    decode each, with the scanner loop's budgeted Decoder.scan (args["mode"] "scan", the
    default) or the full-effort Decoder.decode ("full"); the reply is the frame count, frames
    decoded, ms per frame and fps, plus the resolution, the mode and how the kernels run
    (qr.KERNELS: "viper" on a device unless they fell back to bytecode; accel.STATUS: the
    hand-written Xtensa kernels in use, or "off: why")."""
    count = int(args.get("frames", 10))
    if count < 1 or count > 200:
        raise ValueError("frames must be 1..200")
    mode = args.get("mode", "scan")
    if mode not in ("scan", "full"):
        raise ValueError("mode must be scan or full")
    from scanbridge_fw.commands import CommandError
    camera = getattr(app, "camera", None)
    fault = camera.fault if camera is not None else None
    if fault is not None:  # a degraded scanner: say why, as diag would, instead of a traceback
        raise CommandError("camera_fault", "no frames to bench: %s: %s" % (fault["code"], fault["message"]))
    frames = []
    width = height = 0
    last_error = ""
    for _ in range(count):
        try:
            got = await app.board.capture()
        except Exception as e:  # the driver's words, not a crash of the command
            last_error = repr(e)
            got = None
        if got is None:
            continue
        gray, width, height = got
        # the driver reuses its buffer: decode before the next capture
        # the scanner's own decoder (one set of buffers), kept across frames as in the loop
        r = run([gray], width, height, False, mode, qr.decoder_for(width, height))
        frames.append(r)
    if not frames:
        raise CommandError("capture_failed", "the camera gave none of %d frames%s"
                           % (count, (": " + last_error) if last_error else ""))
    n = len(frames)
    ms = sum(f["ms_per_frame"] for f in frames) / n
    return {"frames": n, "width": width, "height": height, "mode": mode, "kernels": qr.KERNELS,
            "accel": accel.STATUS,
            "decoded": sum(f["decoded"] for f in frames),
            "ms_per_frame": ms, "fps": 1000 / ms if ms else 0.0}
