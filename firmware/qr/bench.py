# Decoder benchmark that runs the same on the board, in the WebAssembly MicroPython and in
# CPython: frames decoded per second and where the time goes (per-pixel kernels vs the rest,
# and per stage).  Used by the firmware `bench` command and by docs/decoder.md's estimate.
import time

from . import decoder, kernels

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


KERNELS = ("block_stats", "block_smooth", "apply_threshold", "invert", "find_rows", "cross_runs",
           "sample_grid", "score_grid", "grid_contrast")


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


def run(frames, width, height, per_kernel=True):
    """Decode every frame once; returns {"frames", "decoded", "fps", "ms_per_frame",
    "kernel_ms", "other_ms", "kernels": {name: [ms, calls]}} (times per frame).

    With per_kernel the kernels are timed one by one (a small overhead per call); the split
    between per-pixel kernels and the rest is what the ESP32 estimate scales differently."""
    tally = {}
    saved = {}
    if per_kernel:
        for name in KERNELS:
            tally[name] = [0, 0]
            saved[name] = getattr(kernels, name)
            setattr(kernels, name, _Timed(saved[name], tally, name))
    try:
        dec = decoder.Decoder(width, height)
        n = 0
        decoded = 0
        total = 0
        for frame in frames:
            t0 = _clock_us()
            found = dec.decode(frame)
            total += _elapsed_us(t0)
            n += 1
            if found:
                decoded += 1
    finally:
        for name in saved:
            setattr(kernels, name, saved[name])
    if n == 0:
        return {"frames": 0, "decoded": 0, "fps": 0.0, "ms_per_frame": 0.0}
    kern_us = 0
    per = {}
    for name in tally:
        kern_us += tally[name][0]
        per[name] = [tally[name][0] / 1000 / n, tally[name][1] / n]
    return {
        "frames": n,
        "decoded": decoded,
        "fps": n * 1000000 / total if total else 0.0,
        "ms_per_frame": total / 1000 / n,
        "kernel_ms": kern_us / 1000 / n,
        "other_ms": (total - kern_us) / 1000 / n,
        "kernels": per,
    }


async def command(app, args):
    """Firmware `bench` command: capture args["frames"] (default 10) frames from the camera and
    decode each; the reply is run()'s dict plus the resolution."""
    count = int(args.get("frames", 10))
    if count < 1 or count > 200:
        raise ValueError("frames must be 1..200")
    frames = []
    width = height = 0
    for _ in range(count):
        got = await app.board.capture()
        if got is None:
            continue
        gray, width, height = got
        # the driver reuses its buffer: decode before the next capture
        r = run([gray], width, height, False)
        frames.append(r)
    if not frames:
        return {"frames": 0, "error": "capture_failed"}
    n = len(frames)
    ms = sum(f["ms_per_frame"] for f in frames) / n
    return {"frames": n, "width": width, "height": height,
            "decoded": sum(f["decoded"] for f in frames),
            "ms_per_frame": ms, "fps": 1000 / ms if ms else 0.0}
