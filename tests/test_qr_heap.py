"""The decoder's live heap, measured where a garbage collector really runs: the firmware as built
for a device (viper kernels) in the MicroPython unix port, in a heap only FREE bytes larger than
what the code, the decoder's buffers and the frame take (measured by a first run).  Full-effort
decode and the scanner's scan of blank, noise and hard generated scenes must then work, and give
the payloads CPython gives.  (x64 objects are twice the ESP32's 32-bit ones, and the heap's
holes are real ones: the pessimistic side.)"""
import json
import random
import subprocess
import textwrap

import pytest

from scanbridge_fw.qr import decoder
from scanbridge_tools import scenes
from tests.support.micropython_unix import build_for_host, unix_micropython

W, H = 320, 240
FREE = 32 * 1024  # heap beyond code, decoder and frame: all a decode may allocate at once
# (these scenes decode in 20 KB; the margin is for the layouts of a fragmented heap)

_SCRIPT = textwrap.dedent('''
    import gc, json, sys
    sys.path.insert(0, %(lib)r)
    from scanbridge_fw.qr import decoder
    dec = decoder.Decoder(%(w)d, %(h)d)
    frame = bytearray(%(w)d * %(h)d)
    gc.collect()
    print("@@STATIC %%d" %% gc.mem_alloc())
    out = []
    with open(%(raw)r, "rb") as f:
        while %(decode)d and f.readinto(frame) == len(frame):
            full = dec.decode(frame)
            dec._good, dec._alt, dec._rot = 0, False, 0
            sc = dec.scan(frame)
            out.append([[p.decode() for p in full], [p.decode() for p in sc]])
    print("@@OUT " + json.dumps(out))
''')


def _frames():
    rng = random.Random(20261129)
    frames = [bytes([200]) * (W * H), bytes(rng.randrange(256) for _ in range(W * H))]
    for _ in range(8):
        payload = "28%016d" % rng.randrange(10 ** 16)  # a payment code's digits
        frames.append(scenes.random_scene(rng, payload, W, H)[0])
    return frames


@pytest.mark.skipif(unix_micropython() is None, reason="the MicroPython unix port is missing")
def test_decode_fits_a_nearly_full_heap(tmp_path):
    frames = _frames()
    raw = tmp_path / "frames.raw"
    raw.write_bytes(b"".join(frames))
    lib = build_for_host(tmp_path / "build")
    script = tmp_path / "heap.py"

    def run(decode, heap):
        script.write_text(_SCRIPT % {"lib": str(lib), "w": W, "h": H, "raw": str(raw), "decode": decode})
        proc = subprocess.run([unix_micropython(), "-X", "heapsize=%d" % heap, str(script)],
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        return proc
    # the heap the code, the decoder and the frame take, then a heap of that plus FREE
    static = int(run(0, 1 << 20).stdout.split("@@STATIC ")[1].split()[0])
    proc = run(1, static + FREE)
    got = json.loads(proc.stdout.split("@@OUT ")[1])
    # the same answers as the plain-Python decoder in CPython
    dec = decoder.Decoder(W, H)
    want = []
    for f in frames:
        full = dec.decode(f)
        dec._good, dec._alt, dec._rot = 0, False, 0
        want.append([[p.decode() for p in full], [p.decode() for p in dec.scan(f)]])
    assert got == want
    assert got[0] == [[], []] and got[1] == [[], []]
    assert sum(1 for full, _ in got[2:] if full) >= 4, got
