"""Camera snapshots on the host: put SNAPSHOT chunks back together, save the image, decode it with
zxing-cpp, and tell a code problem (readable here: the device's decoder or the code itself) from
a camera problem (too dark, too bright, low contrast, out of focus, no code in view)."""
from __future__ import annotations

import io

from scanbridge_tools.diagnostics.errors import DiagError

# Verdict thresholds (8-bit gray). Sharpness: the steepest neighbour steps (99.5th percentile)
# over the picture's brightness span. A focused code has module edges that jump most of the span
# in one pixel; blur spreads each edge over several pixels; dividing by the span keeps a dim but
# sharp picture from looking blurred.
DARK, BRIGHT, LOW_CONTRAST, BLURRED = 40, 215, 18, 0.35


def assemble(snap: dict) -> bytes:
    """{"count": n, "parts": {index: bytes}} -> the file bytes; DiagError when chunks are missing."""
    count = snap["count"]
    missing = [i for i in range(count) if i not in snap["parts"]]
    if missing:
        raise DiagError("snapshot_incomplete", "%d of %d chunks missing (first %d)" % (len(missing), count, missing[0]),
                        "run the snapshot again; a noisy cable loses frames")
    return b"".join(snap["parts"][i] for i in range(count))


def to_image(data: bytes):
    from PIL import Image
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except Exception as e:  # PIL raises several types for a damaged file
        raise DiagError("snapshot_unreadable", "the snapshot is not an image: %s" % e)
    return img.convert("L")


def analyse(img) -> dict:
    """{"verdict", "decoded", "mean", "contrast", "sharpness", "advice"} for a gray image."""
    import numpy as np
    import zxingcpp
    a = np.asarray(img, dtype=np.float32)
    mean = float(a.mean())
    std = float(a.std())
    steps = np.concatenate([np.abs(np.diff(a, axis=1)).ravel(), np.abs(np.diff(a, axis=0)).ravel()])
    span = float(np.percentile(a, 99) - np.percentile(a, 1)) + 1.0
    sharp = float(np.percentile(steps, 99.5) / span)
    decoded = []
    for r in zxingcpp.read_barcodes(img):
        raw = bytes(r.bytes) if hasattr(r, "bytes") else r.text.encode()
        decoded.append({"format": str(r.format).split(".")[-1], "text": r.text, "bytes": len(raw)})
    out = {"mean": round(mean, 1), "contrast": round(std, 1), "sharpness": round(sharp, 3),
           "width": img.width, "height": img.height, "decoded": decoded}
    if decoded:
        out["verdict"] = "code_readable"
        out["advice"] = ("the camera picture is good enough: a code the scanner does not accept is a code "
                         "problem (wrong/expired token) or the device decoder's (see diag selftest)")
    elif mean < DARK:
        out["verdict"] = "too_dark"
        out["advice"] = "turn the illumination on (config light=true), raise the phone's screen brightness"
    elif mean > BRIGHT:
        out["verdict"] = "too_bright"
        out["advice"] = "glare or overexposure: tilt the phone or the scanner, lower the light duty"
    elif std < LOW_CONTRAST:
        out["verdict"] = "low_contrast"
        out["advice"] = "nothing sharp in view or a washed-out screen: check the lens cover and the distance"
    elif sharp < BLURRED:
        out["verdict"] = "out_of_focus"
        out["advice"] = "the lens is focused too far: twist the OV2640 lens for ~10 cm (hardware/mounting.md)"
    else:
        out["verdict"] = "no_code_found"
        out["advice"] = "the picture is sharp and lit but shows no readable code: aim, distance, or a damaged code"
    return out
