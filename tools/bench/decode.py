"""`scanbridge bench decode DIR`: success rate and speed of our QR decoder beside zxing-cpp, zbar, quirc.

DIR holds sub-folders of images (.png/.jpg/.jpeg/.webp/.bmp), each with a same-named .txt holding
the expected text (the layout of ../shared/corpus/). Every image is decoded at 0, 90, 180 and 270
degrees; every decoder gets the same 8-bit grayscale buffer. A success is an exact match of the
expected text: payload bytes and .txt bytes are both read as UTF-8 (latin-1 when not UTF-8) and
compared as they are. The .txt is NOT stripped of a trailing newline: in zxing-qr eleven codes
really end in "\\n" or "\\r\\n", and stripping it would turn 44 correct reads into failures (zxing
83.3 % -> 64.0 %). With this rule the harness reproduces the anchor figures of issue 3 exactly.

    scanbridge bench decode DIR [--fit WxH] [--json] [--detail] [--decoders scanbridge,zxing,...]

--fit WxH shrinks each image to fit WxH keeping its aspect ratio (bilinear; never enlarges, as
in the anchor measurement), then converts it to gray. --json prints exactly
{"scanbridge": {"ok", "total", "ms_per_image"}, "zxing": ..., "zbar": ..., "quirc": ...};
--detail adds per-folder counts and errors (under the extra key "detail" when --json is given).
ms_per_image is the mean wall time of one decode call on one frame (one rotation), this process,
one core. A decoder that is missing or raises scores a failure for that frame, never a crash.
"""
import json
import os
import sys
import time

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
ROTATIONS = (0, 90, 180, 270)
ALL_DECODERS = ("scanbridge", "zxing", "zbar", "quirc")


class DecoderUnavailable(Exception):
    """The decoder could not be loaded (its error message says why)."""


# ---------------------------------------------------------------- decoders
# Each adapter takes (gray bytes, width, height) and returns a list of payload bytes.


def _ours():
    try:
        from scanbridge_fw import qr
        decode = qr.decode
    except Exception as e:  # ImportError, AttributeError, or a SyntaxError while it is written
        reason = "%s: %s" % (type(e).__name__, e)

        def missing(gray, width, height):
            raise DecoderUnavailable("scanbridge_fw.qr.decode unavailable (%s)" % reason)
        return missing

    def ours(gray, width, height):
        # A fresh mutable buffer per call, like the camera's frame buffer; a decoder that writes
        # into its input cannot spoil the frame for the next decoder.
        got = decode(bytearray(gray), width, height)
        return [bytes(p) for p in (got or ())]
    return ours


def _zxing():
    import numpy as np
    import zxingcpp

    def zxing(gray, width, height):
        img = np.frombuffer(gray, dtype=np.uint8).reshape(height, width)
        return [r.bytes for r in zxingcpp.read_barcodes(img, formats=zxingcpp.BarcodeFormat.QRCode)]
    return zxing


def _zbar():
    from pyzbar import pyzbar

    def zbar(gray, width, height):
        return [r.data for r in pyzbar.decode((gray, width, height), symbols=[pyzbar.ZBarSymbol.QRCODE])]
    return zbar


def _quirc():
    import quirc

    def quirc_(gray, width, height):
        dec = quirc.Decoder.from_bytes(gray, width, height)
        out = []
        for i in range(len(dec)):
            try:
                out.append(bytes(dec[i][1].payload))
            except RuntimeError:  # quirc found a code but could not decode it: a miss, not a crash
                pass
        return out
    return quirc_


_FACTORIES = {"scanbridge": _ours, "zxing": _zxing, "zbar": _zbar, "quirc": _quirc}


def load_decoders(names=ALL_DECODERS):
    """{name: adapter}; a decoder whose library is missing becomes one that raises per frame."""
    out = {}
    for name in names:
        if name not in _FACTORIES:
            raise ValueError("unknown decoder %r (known: %s)" % (name, ", ".join(ALL_DECODERS)))
        try:
            out[name] = _FACTORIES[name]()
        except ImportError as e:
            out[name] = _raiser(DecoderUnavailable("%s: %s" % (name, e)))
    return out


def _raiser(exc):
    def fail(gray, width, height):
        raise exc
    return fail


# ---------------------------------------------------------------- corpus


def as_text(data):
    """Bytes as text the way a payment terminal would show them: UTF-8, else latin-1."""
    data = bytes(data)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def parse_fit(text):
    if not text:
        return None
    try:
        w, h = text.lower().split("x")
        w, h = int(w), int(h)
    except ValueError:
        raise ValueError("--fit wants WxH, e.g. 320x240, not %r" % text)
    if w < 1 or h < 1:
        raise ValueError("--fit size must be positive")
    return w, h


def load_gray(path, fit=None):
    """An image file as (PIL 'L' image); shrunk to fit (w, h) first when given."""
    from PIL import Image
    img = Image.open(path)
    img.load()
    if fit is not None:
        s = min(fit[0] / img.width, fit[1] / img.height)
        if s < 1:
            if img.mode not in ("L", "RGB"):
                img = img.convert("RGB")  # palette/1-bit images cannot be resampled
            size = (max(1, round(img.width * s)), max(1, round(img.height * s)))
            img = img.resize(size, Image.Resampling.BILINEAR)
    return img.convert("L")


def rotated_frames(img):
    """[(degrees, gray bytes, width, height)] for the four rotations (counter-clockwise)."""
    from PIL import Image
    ops = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_270}
    out = []
    for deg in ROTATIONS:
        r = img if deg == 0 else img.transpose(ops[deg])
        out.append((deg, r.tobytes(), r.width, r.height))
    return out


def find_images(root):
    """[(folder name, image path, expected text)] for every image with a .txt beside it.

    Sub-folders of root, sorted; images directly in root count as folder "."."""
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError("no such corpus folder: %s" % root)
    folders = [(".", root)] + [(d, os.path.join(root, d)) for d in sorted(os.listdir(root))
                               if os.path.isdir(os.path.join(root, d))]
    items = []
    for name, path in folders:
        for f in sorted(os.listdir(path)):
            stem, ext = os.path.splitext(f)
            txt = os.path.join(path, stem + ".txt")
            if ext.lower() in IMAGE_EXTS and os.path.isfile(txt):
                with open(txt, "rb") as fh:  # bytes: "\r\n" inside payloads must survive
                    items.append((name, os.path.join(path, f), as_text(fh.read())))
    return items


# ---------------------------------------------------------------- run


class Tally:
    """Per-decoder counts."""

    def __init__(self):
        self.ok = 0
        self.total = 0
        self.seconds = 0.0
        self.errors = 0
        self.wrong = 0  # a payload that is not the expected one (a misread, worse than a miss)
        self.first_error = None
        self.folders = {}  # folder -> [ok, total]
        self.misses = []  # (image path, degrees)

    def summary(self):
        ms = 1000.0 * self.seconds / self.total if self.total else 0.0
        return {"ok": self.ok, "total": self.total, "ms_per_image": round(ms, 3)}


def run(items, decoders, fit=None, progress=None):
    """Decode every image of `items` (from find_images) at four rotations; {name: Tally}."""
    tallies = {name: Tally() for name in decoders}
    for folder, path, expected in items:
        try:
            frames = rotated_frames(load_gray(path, fit))
        except Exception as e:  # an unreadable image fails every decoder, visibly
            for t in tallies.values():
                _count(t, folder, 4, 0)
                t.errors += 4
                t.first_error = t.first_error or "%s: %s" % (path, e)
                t.misses.extend((path, deg) for deg in ROTATIONS)
            continue
        for deg, gray, w, h in frames:
            for name, fn in decoders.items():
                t = tallies[name]
                t0 = time.perf_counter()
                try:
                    got = fn(gray, w, h)
                    err = None
                except Exception as e:  # a decoder bug is a failed frame, not a failed run
                    got, err = [], e
                t.seconds += time.perf_counter() - t0
                texts = [as_text(p) for p in got]
                ok = expected in texts
                _count(t, folder, 1, int(ok))
                if err is not None:
                    t.errors += 1
                    if t.first_error is None:
                        t.first_error = "%s@%d: %s: %s" % (path, deg, type(err).__name__, err)
                if texts and not ok:
                    t.wrong += 1
                if not ok:
                    t.misses.append((path, deg))
        if progress:
            progress()
    return tallies


def _count(t, folder, total, ok):
    t.total += total
    t.ok += ok
    f = t.folders.setdefault(folder, [0, 0])
    f[0] += ok
    f[1] += total


def results_json(tallies, detail=False):
    out = {name: t.summary() for name, t in tallies.items()}
    if detail:
        out["detail"] = {name: {"folders": {k: {"ok": v[0], "total": v[1]} for k, v in t.folders.items()},
                                "errors": t.errors, "wrong": t.wrong, "first_error": t.first_error}
                         for name, t in tallies.items()}
    return out


def _pct(ok, total):
    return "%d/%d %5.1f%%" % (ok, total, 100.0 * ok / total) if total else "-"


def format_table(tallies, title=""):
    names = list(tallies)
    folders = []
    for t in tallies.values():
        for f in t.folders:
            if f not in folders:
                folders.append(f)
    rows = [["folder"] + names]
    for f in folders:
        rows.append([f] + [_pct(*tallies[n].folders.get(f, (0, 0))) for n in names])
    rows.append(["overall"] + [_pct(tallies[n].ok, tallies[n].total) for n in names])
    rows.append(["ms/image"] + ["%.1f" % tallies[n].summary()["ms_per_image"] for n in names])
    rows.append(["misreads"] + [str(tallies[n].wrong) for n in names])
    rows.append(["errors"] + [str(tallies[n].errors) for n in names])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [title] if title else []
    for i, r in enumerate(rows):
        lines.append("  ".join(c.ljust(widths[j]) if j == 0 else c.rjust(widths[j]) for j, c in enumerate(r)))
        if i == 0 or i == len(folders):
            lines.append("  ".join("-" * w for w in widths))
    for n in names:
        if tallies[n].first_error:
            lines.append("%s: first error: %s" % (n, tallies[n].first_error))
    return "\n".join(lines)


def decoder_revision():
    """The last commit touching firmware/qr (+ "-dirty" with local edits), for the run record;
    None outside a git checkout."""
    import subprocess
    qr = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "firmware", "qr")
    try:
        rev = subprocess.run(["git", "log", "-1", "--format=%h", "--", "."], cwd=qr, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "."], cwd=qr, capture_output=True,
                               text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (rev + ("-dirty" if dirty else "")) if rev else None


# ---------------------------------------------------------------- CLI


def add_arguments(parser):
    parser.add_argument("dir", help="corpus folder: sub-folders of images, each with a same-named .txt")
    parser.add_argument("--fit", metavar="WxH", help="shrink each image to fit WxH (keeps aspect ratio)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--detail", action="store_true",
                        help="per-folder counts, errors and misreads (JSON key 'detail'); missed frames in the table")
    parser.add_argument("--decoders", default=",".join(ALL_DECODERS),
                        help="comma-separated subset of %s (default: all)" % ",".join(ALL_DECODERS))


def main(args):
    try:
        fit = parse_fit(args.fit)
        names = [n.strip() for n in args.decoders.replace(" ", ",").split(",") if n.strip()]
        decoders = load_decoders(names)
        items = find_images(args.dir)
    except (ValueError, FileNotFoundError) as e:
        print("bench decode: %s" % e, file=sys.stderr)
        return 2
    if not items:
        print("bench decode: no images with a same-named .txt under %s" % args.dir, file=sys.stderr)
        return 2
    rev = decoder_revision() if "scanbridge" in decoders else None  # before: edits may land meanwhile
    t0 = time.time()
    tallies = run(items, decoders, fit)
    if args.json:
        out = results_json(tallies, args.detail)
        if args.detail:
            out["detail"]["decoder_revision"] = rev
        print(json.dumps(out))
        return 0
    title = "bench decode %s%s: %d images x %d rotations, %.0f s%s" % (
        args.dir, " --fit %dx%d" % fit if fit else "", len(items), len(ROTATIONS), time.time() - t0,
        ", firmware/qr at %s" % rev if rev else "")
    print(format_table(tallies, title))
    if args.detail:
        for n, t in tallies.items():
            print("%s missed (%d): %s" % (n, len(t.misses), ", ".join(
                "%s@%d" % (os.path.relpath(p, args.dir), d) for p, d in t.misses)))
    return 0
