"""Decoder speed where it will run: `scanbridge_fw.qr.bench` inside the WebAssembly MicroPython
(bytecode, the interpreter the firmware tests use) or in this CPython.

    python -m scanbridge_tools.bench.decode_mpy [--cpython] [--scenes N] [--repeat K] [--json]

Frames (320x240, 8-bit grey): a clean rendered code (segno, version 2, 3 px modules, on a flat
background), a blank frame, and the first N counter-dev scenes of ../shared/corpus/counter-dev
(60 at most). Reported, per frame group:
  full   - Decoder.decode (every strategy until a read), ms per frame, split into the per-pixel
           kernels (viper on the device) and the rest (bytecode);
  scan   - Decoder.scan (one pass, capped work) on the same frames;
  stream - frames-to-first-read: each counter scene shown to Decoder.scan up to K times in a row
           (one decoder for all scenes), with the ms per frame and the kernel/rest split.
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
    clean = _load("/bench/clean.raw", 1)
    blank = _load("/bench/blank.raw", 1)
    scenes = _load("/bench/scenes.raw", %(nscenes)d)
    with open("/bench/expected.txt", "rb") as f:
        expected = [x for x in f.read().split(b"\n")][:%(nscenes)d]
    out = {"calibration_ms": bench.calibrate(scenes[0] if scenes else clean[0])}
    for name, frames in (("clean", clean * 3), ("blank", blank * 2), ("scenes", scenes)):
        if not frames:
            continue
        out[name] = {"full": bench.run(frames, %(w)d, %(h)d, True, "full"),
                     "scan": bench.run(frames, %(w)d, %(h)d, True, "scan")}
    if scenes:
        out["stream"] = bench.stream(scenes, %(w)d, %(h)d, %(repeat)d, True, expected)
    print("@@BENCH " + json.dumps(out))
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


def run_cpython(clean, scenes, expected, repeat):
    sys.path.insert(0, str(ROOT))
    from scanbridge_fw.qr import bench
    out = {}
    out["calibration_ms"] = bench.calibrate(scenes[0] if scenes else clean)
    for name, frames in (("clean", [clean] * 3), ("blank", [bytes(W * H)] * 2), ("scenes", scenes)):
        if frames:
            out[name] = {"full": bench.run(frames, W, H, True, "full"),
                         "scan": bench.run(frames, W, H, True, "scan")}
    if scenes:
        out["stream"] = bench.stream(scenes, W, H, repeat, True, expected)
    return out


def run_mpy(clean, scenes, expected, repeat, heap=64 * 1024 * 1024):
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "clean.raw").write_bytes(clean)
        (t / "blank.raw").write_bytes(bytes(W * H))
        (t / "scenes.raw").write_bytes(b"".join(scenes))
        (t / "expected.txt").write_bytes(b"\n".join(expected))
        script = t / "test_decode_bench.py"
        script.write_text(_SCRIPT % {"size": W * H, "w": W, "h": H, "nscenes": len(scenes),
                                     "repeat": repeat})
        files = ",".join("%s:/bench/%s" % (t / f, f) for f in ("clean.raw", "blank.raw", "scenes.raw", "expected.txt"))
        env = dict(os.environ, SB_MPY_FILES=files)
        proc = subprocess.run(["node", str(RUNNER), str(ROOT / "firmware"), str(heap), str(script)],
                              cwd=ROOT, capture_output=True, text=True, env=env, timeout=7200)
    for line in proc.stdout.splitlines():
        if line.startswith("@@BENCH "):
            return json.loads(line[len("@@BENCH "):])
    raise SystemExit("bench did not report:\n" + proc.stdout[-3000:] + proc.stderr[-3000:])


def summary(out, detail=False):
    lines = ["calibration: threshold loop over 76,800 pixels %.1f ms (5.0 ms on the x64 build of the field notes)"
             % out["calibration_ms"]]
    for name in ("clean", "blank", "scenes"):
        if name not in out:
            continue
        for mode in ("full", "scan"):
            r = out[name][mode]
            lines.append("%-6s %-4s %3d frames %3d decoded  %8.1f ms/frame  kernels %8.1f  rest %7.1f  fit steps %6.0f"
                         % (name, mode, r["frames"], r["decoded"], r["ms_per_frame"], r["kernel_ms"],
                            r["other_ms"], r.get("fit_steps", 0)))
            if detail:
                lines.append("        " + ", ".join("%s %.1f/%.0f" % (k, v[0], v[1]) for k, v in sorted(r["kernels"].items()) if v[1]))
    s = out.get("stream")
    if s:
        ftr = s["frames_to_read"]
        read = [f for f in ftr if f]
        hist = {k: sum(1 for f in read if f <= k) for k in (1, 2, 4, 8, 16)}
        lines.append("stream %d scenes, %d read; read within 1/2/4/8/16 frames: %s; mean frames to read %.2f"
                     % (s["scenes"], s["read"], "/".join(str(hist[k]) for k in (1, 2, 4, 8, 16)),
                        sum(read) / max(1, len(read))))
        lines.append("stream %.1f ms/frame (kernels %.1f, rest %.1f) over %d frames; mean ms to read %.0f"
                     % (s["ms_per_frame"], s["kernel_ms"], s["other_ms"], s["frames"],
                        sum(m for m in s["ms_to_read"] if m) / max(1, len(read))))
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpython", action="store_true", help="run in this CPython instead of MicroPython")
    ap.add_argument("--scenes", type=int, default=60)
    ap.add_argument("--repeat", type=int, default=16, help="frames per scene in the stream test")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--detail", action="store_true", help="per-kernel ms/calls per frame")
    a = ap.parse_args(argv)
    scenes, expected = counter_scenes(a.scenes) if CORPUS.is_dir() else ([], [])
    clean = clean_frame()
    out = (run_cpython if a.cpython else run_mpy)(clean, scenes, expected, a.repeat)
    print(json.dumps(out) if a.json else summary(out, a.detail))


if __name__ == "__main__":
    main()
