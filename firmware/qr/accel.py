# The ESP32's hand-written kernels (kernels_xtensa: @micropython.asm_xtensa, only a device
# build has the module), each taken into use only after it has given exactly what its
# kernels.py namesake gives on test input: a wrong answer from machine code written by hand
# would binarise or scan every frame wrongly, so none is used on trust.  The checks run once,
# at import, in a few milliseconds (see select: a check that crashes turns them off).  Elsewhere (CPython, the WebAssembly or unix MicroPython),
# or when the module cannot load (no executable RAM left) or a check fails, each is None and
# the viper (or Python) kernel runs.  STATUS says which, for diag.
import os
from array import array

from . import kernels

BLOCK_STATS_PARAMS = 12  # int32 words of kernels_xtensa.block_stats' parameter array
FIND_ROWS_PARAMS = 24  # ... and of find_rows'


def _test_frame(w, h):
    """A deterministic grey frame: ramps, flat stretches, noise (an LCG: no imports) and, in
    every row of a frame at least 44 wide, a dark-light-dark-light-dark run pattern at a
    shifting place: 3-pixel outer runs around a centre run of 9 (1:1:3:1:1) to 25 pixels, so
    that some rows pass the ratio tests and some fail them narrowly."""
    img = bytearray(w * h)
    x = 12345
    for i in range(w * h):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        img[i] = (x >> 16) & 255 if (i // 97) & 1 else (i * 7 // w) & 255
    for y in range(h if w >= 44 else 0):
        at = 2 + (y * 5) % (w - 42)
        for run, grey in ((3, 30), (3, 220), (9 + (y * 3) % 17, 25), (3, 215), (3, 35)):
            for _ in range(run):
                img[y * w + at] = grey
                at += 1
    return img


def check_block_stats(fn, w=37, h=29):
    """True when fn(img, avg, params) writes what kernels.block_stats writes, at every block
    size, with edge blocks (37 x 29) and every flatness limit used."""
    img = _test_frame(w, h)
    p = array("i", (0 for _ in range(BLOCK_STATS_PARAMS)))
    for sh in (0, 2, 3, 4):
        bs = 1 << sh
        bw = (w + bs - 1) // bs
        bh = (h + bs - 1) // bs
        for mind in (0, 24):
            want = bytearray(bw * bh)
            got = bytearray(bw * bh)
            kernels.block_stats(0, 0, img, w, h, sh, bw, bh, mind, want)
            p[0] = w
            p[1] = h
            p[2] = sh
            p[3] = bw
            p[4] = mind
            fn(img, got, p)
            if got != want:
                return False
    return True


def check_find_rows(fn, w=71, h=24):
    """True when fn(img, thr, out, params) finds the hits kernels.find_rows finds, in both
    polarities, at two block sizes, every row and every other, and with a full hit buffer."""
    img = _test_frame(w, h)
    p = array("i", (0 for _ in range(FIND_ROWS_PARAMS)))
    want = array("H", (0 for _ in range(3 * 40)))
    got = array("H", (0 for _ in range(3 * 40)))
    seen = 0
    for sh in (2, 3):
        bs = 1 << sh
        bw = (w + bs - 1) // bs
        thr = bytearray(bw * ((h + bs - 1) // bs))
        for i in range(len(thr)):
            thr[i] = 96 + (i * 37) % 64
        for tk in ((bw << 4) | sh, (bw << 4) | 8 | sh):
            for step, maxn in ((1, 40), (2, 40), (1, 3)):
                n = kernels.find_rows(0, 0, img, thr, tk, w, 0, h, step, 55, want, maxn)
                p[0] = tk
                p[1] = w
                p[2] = 0
                p[3] = h
                p[4] = step
                p[5] = 55
                p[6] = maxn
                if fn(img, thr, got, p) != n or got[:3 * n] != want[:3 * n]:
                    return False
                seen += n
    return seen > 0  # the test input must hold hits, or it proves nothing


# A check that crashes (machine code the chip cannot run) would restart the scanner before it
# could say no: the check leaves MARK behind while it runs, and a boot that finds it writes OFF
# and uses none.  OFF also lets a technician turn the hand-written kernels off by hand.
MARK = "/accel_check"
OFF = "/noaccel"
CHECKS = (("block_stats", check_block_stats), ("find_rows", check_find_rows))


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _write(path, text):
    """Best effort: a read-only or full flash must not stop the decoder from importing."""
    try:
        with open(path, "w") as f:
            f.write(text)
    except OSError:
        pass


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def _passes(check, fn):
    """check(fn), and False (not an exception, which would stop the decoder importing) when
    the check itself cannot run, e.g. out of memory for its test frame."""
    try:
        return check(fn)
    except Exception:
        return False


def select(module, mark=MARK, off=OFF):
    """({name: function or None}, status) for the functions of `module` (kernels_xtensa) that
    pass their check, unless `off` exists or `mark` says the last check never finished."""
    chosen = {name: None for name, _check in CHECKS}
    if _exists(off):
        return chosen, "off: %s exists (delete it to use the hand-written kernels)" % off
    if _exists(mark):
        _write(off, "the check of the hand-written kernels did not finish\n")
        _remove(mark)
        return chosen, "off: the last boot's check did not finish; %s written" % off
    _write(mark, "checking\n")
    used = []
    failed = []
    for name, check in CHECKS:
        fn = getattr(module, name, None)
        if fn is not None and _passes(check, fn):
            chosen[name] = fn
            used.append(name)
        else:
            failed.append(name)
    _remove(mark)
    return chosen, " ".join(used) + ("" if not failed else " (failed their check: %s)" % " ".join(failed))


block_stats = None
find_rows = None
try:
    from . import kernels_xtensa  # type: ignore  # (only a device build has it)
except (ImportError, SyntaxError, MemoryError, ValueError) as e:  # no module, no inline asm, no IRAM
    STATUS = "off: %s" % (e,)
else:
    _chosen, STATUS = select(kernels_xtensa)
    block_stats = _chosen["block_stats"]
    find_rows = _chosen["find_rows"]
