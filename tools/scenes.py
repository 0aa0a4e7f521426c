"""Synthetic camera scenes: a phone screen showing a QR code, as a cheap camera sees it.

Host-side tooling (numpy + PIL + segno) for tests, benchmarks and the virtual scanner's camera;
never imported by the firmware. A scene is rendered at `supersample` times the camera resolution
(the phone as a plane in 3-D, seen through a pinhole camera), area-averaged down to the camera's
resolution, then degraded the way an OV2640 behind a fixed-focus lens degrades it: defocus blur,
glare on the screen, uneven light, low contrast, sensor noise, 8-bit quantisation.

API (everything returns 8-bit grayscale, row-major, one byte per pixel):

    render_scene(payload, width=320, height=240, *, error="m", version=None, mask=None,
                 module_px=None, angle_deg=0.0, tilt=(0.0, 0.0), center=(0.5, 0.5),
                 blur=0.0, glare=0.0, glare_pos=(0.5, 0.5), glare_size=0.15, shading=0.0,
                 contrast=1.0, brightness=0.0, noise=0.0, inverted=False, mirrored=False,
                 seed=0, supersample=3) -> (bytes gray, width, height)
    random_params(rng, payload, width=320, height=240) -> dict of render_scene keyword arguments
    random_scene(rng, payload, width=320, height=240, **overrides) -> (bytes gray, width, height)
    scene_to_png(gray, width, height, path=None) -> PNG bytes (also written to path if given)
    make_code(payload, error="m", version=None, mask=None) -> segno QRCode (never Micro QR)

Parameters of render_scene:
    payload     bytes (byte mode) or str (segno picks the most compact mode); ECC level `error`
                ("l", "m", "q", "h"), optional fixed `version` (1-40) and `mask` (0-7).
    module_px   width of one module in camera pixels at the code's centre; None: the code plus
                its quiet zone spans about 60 % of the frame's shorter side.
    angle_deg   rotation in the image plane (degrees, counter-clockwise).
    tilt        (about the horizontal axis, about the vertical axis) in degrees: perspective.
    center      where the code's centre lands, as fractions of (width, height).
    blur        gaussian defocus, sigma in camera pixels.
    glare       strength 0..1 of a bright reflection (added light, saturates at white),
                centred at glare_pos (fractions of the frame), radius glare_size * shorter side.
    shading     0..1 illumination falloff across the frame (direction from seed).
    contrast    0..1 scales the signal around mid-gray; brightness shifts it (-0.5..0.5).
    noise       sensor noise sigma in 8-bit gray levels.
    inverted    light-on-dark code (dark-theme wallet); mirrored: seen through a mirror.
    seed        makes the background texture, shading direction and noise reproducible.

`rng` in random_params/random_scene is a `random.Random` or an int seed.
"""
import io
import math
import random as _random

import numpy as np
import segno
from PIL import Image

QUIET = 4  # modules of quiet zone a wallet app leaves around the code

# Linear intensities (0 = black, 1 = white) of what a phone screen shows.
_SCREEN_LIGHT = 0.92
_SCREEN_DARK = 0.08
_BEZEL = 0.06


def make_code(payload, error="m", version=None, mask=None):
    """A segno QR code (never Micro QR) with exactly the ECC level asked for."""
    return segno.make(payload, error=error, version=version, mask=mask, micro=False,
                      boost_error=False)


def render_scene(payload, width=320, height=240, *, error="m", version=None, mask=None,
                 module_px=None, angle_deg=0.0, tilt=(0.0, 0.0), center=(0.5, 0.5),
                 blur=0.0, glare=0.0, glare_pos=(0.5, 0.5), glare_size=0.15, shading=0.0,
                 contrast=1.0, brightness=0.0, noise=0.0, inverted=False, mirrored=False,
                 seed=0, supersample=3):
    """Render one camera frame of a phone showing `payload` as a QR code; see the module doc."""
    if width < 8 or height < 8:
        raise ValueError("frame too small: %dx%d" % (width, height))
    code = make_code(payload, error=error, version=version, mask=mask)
    matrix = np.array([list(row) for row in code.matrix], dtype=bool)
    n = matrix.shape[0]
    if mirrored:
        matrix = matrix[:, ::-1]
    if module_px is None:
        module_px = default_module_px(n, width, height)
    if module_px <= 0:
        raise ValueError("module_px must be positive")
    if isinstance(tilt, (int, float)):
        tilt = (float(tilt), 0.0)
    rs = np.random.default_rng(seed)
    s = max(1, int(supersample))

    # Plane coordinates (module units, code centre at 0,0) of every supersampled pixel centre.
    hinv = np.linalg.inv(_homography(width, height, n, module_px, angle_deg, tilt, center))
    us = (np.arange(width * s) + 0.5) / s
    vs = (np.arange(height * s) + 0.5) / s
    uu, vv = np.meshgrid(us, vs)
    pw = hinv[2, 0] * uu + hinv[2, 1] * vv + hinv[2, 2]
    behind = pw <= 1e-9
    pw = np.where(behind, 1.0, pw)
    px = (hinv[0, 0] * uu + hinv[0, 1] * vv + hinv[0, 2]) / pw
    py = (hinv[1, 0] * uu + hinv[1, 1] * vv + hinv[1, 2]) / pw

    img = _phone(px, py, matrix, inverted, rs)
    img[behind] = 0.3
    # Area-average down to the camera's pixels (what the sensor integrates).
    img = img.reshape(height, s, width, s).mean(axis=(1, 3))

    if blur > 0:
        img = _gaussian(img, float(blur))
    if shading > 0:
        a = rs.uniform(0, 2 * math.pi)
        yy, xx = np.mgrid[0:height, 0:width]
        t = ((xx / width - 0.5) * math.cos(a) + (yy / height - 0.5) * math.sin(a))  # -0.7..0.7
        img = img * (1.0 - shading * (t + 0.7) / 1.4)
    if glare > 0:
        yy, xx = np.mgrid[0:height, 0:width]
        r = max(1.0, glare_size * min(width, height))
        d2 = (xx - glare_pos[0] * width) ** 2 + (yy - glare_pos[1] * height) ** 2
        img = img + glare * np.exp(-d2 / (2.0 * r * r))
        img = np.minimum(img, 1.0)  # the sensor saturates
    img = 0.5 + (img - 0.5) * contrast + brightness
    out = img * 255.0
    if noise > 0:
        out = out + rs.normal(0.0, float(noise), out.shape)
    gray = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return gray.tobytes(), width, height


def default_module_px(n, width, height):
    """Module size that makes the code and its quiet zone span ~60 % of the shorter side."""
    return max(1.0, 0.6 * min(width, height) / (n + 2 * QUIET))


def _homography(width, height, n, module_px, angle_deg, tilt, center):
    """3x3 matrix taking plane points (X, Y, 1) in module units to camera pixels (u, v, 1).

    Pinhole camera with focal length f = width pixels (about 53 degrees across, like the
    OV2640's stock lens); the phone sits at the distance that gives `module_px` at its centre."""
    f = float(width)
    cx, cy = width / 2.0, height / 2.0
    a = math.radians(angle_deg)
    tx, ty = math.radians(tilt[0]), math.radians(tilt[1])
    rz = np.array([[math.cos(a), math.sin(a), 0], [-math.sin(a), math.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, math.cos(tx), -math.sin(tx)], [0, math.sin(tx), math.cos(tx)]])
    ry = np.array([[math.cos(ty), 0, math.sin(ty)], [0, 1, 0], [-math.sin(ty), 0, math.cos(ty)]])
    rot = ry @ rx @ rz
    z0 = f / module_px
    t = np.array([(center[0] * width - cx) * z0 / f, (center[1] * height - cy) * z0 / f, z0])
    k = np.array([[f, 0, cx], [0, f, cy], [0, 0, 1]])
    return k @ np.column_stack([rot[:, 0], rot[:, 1], t])


def _phone(px, py, matrix, inverted, rs):
    """Intensity of the phone (screen, code, app chrome, bezel) and the counter behind it."""
    n = matrix.shape[0]
    half = n / 2.0
    light, dark = (_SCREEN_DARK, _SCREEN_LIGHT) if inverted else (_SCREEN_LIGHT, _SCREEN_DARK)
    # Screen geometry in module units: a tall phone, the code in its upper half.
    sw = half + QUIET + max(1.5, 0.12 * n)
    top = -half - QUIET - max(4.0, 0.5 * n)
    bottom = half + QUIET + max(6.0, 0.9 * n)
    bezel = 0.08 * sw

    # Counter top: smooth gradient plus low-frequency texture.
    ph = rs.uniform(0, 2 * math.pi, 4)
    k = 2 * math.pi / (3.0 * n + 10)
    img = (0.38 + 0.06 * np.sin(px * k + ph[0]) * np.cos(py * k * 0.7 + ph[1])
           + 0.04 * np.sin((px + py) * k * 2.3 + ph[2]) + 0.002 * py)
    in_phone = (np.abs(px) < sw + bezel) & (py > top - 2 * bezel) & (py < bottom + 2 * bezel)
    img[in_phone] = _BEZEL
    in_screen = (np.abs(px) < sw) & (py > top) & (py < bottom)
    img[in_screen] = light
    # App chrome: a title bar, two lines of "text" above the code, a button below it.
    chrome = 0.55 if not inverted else 0.45
    bar = in_screen & (py > top) & (py < top + 1.2)
    img[bar] = 0.25 if not inverted else 0.6
    for i, (x0, x1) in enumerate(((-0.7, 0.5), (-0.7, 0.1))):
        y0 = -half - QUIET + 0.2 - 2.4 * (2 - i)
        sel = in_screen & (py > y0) & (py < y0 + 0.9) & (px > x0 * sw) & (px < x1 * sw)
        img[sel] = chrome
    yb = half + QUIET + 2.0
    sel = in_screen & (py > yb) & (py < yb + 2.5) & (np.abs(px) < 0.75 * sw)
    img[sel] = chrome
    # The code itself; the quiet zone is plain screen.
    ix = np.floor(px + half).astype(np.int64)
    iy = np.floor(py + half).astype(np.int64)
    in_code = (ix >= 0) & (ix < n) & (iy >= 0) & (iy < n)
    img[in_code] = np.where(matrix[iy[in_code], ix[in_code]], dark, light)
    return img


def _gaussian(img, sigma):
    """Separable gaussian blur with edge replication (numpy only)."""
    r = max(1, int(math.ceil(3.0 * sigma)))
    x = np.arange(-r, r + 1, dtype=np.float64)
    w = np.exp(-x * x / (2.0 * sigma * sigma))
    w /= w.sum()
    h, wd = img.shape
    p = np.pad(img, ((0, 0), (r, r)), mode="edge")
    out = np.zeros_like(img)
    for i, wi in enumerate(w):
        out += wi * p[:, i:i + wd]
    p = np.pad(out, ((r, r), (0, 0)), mode="edge")
    out = np.zeros_like(img)
    for i, wi in enumerate(w):
        out += wi * p[i:i + h, :]
    return out


def _as_rng(rng):
    return rng if isinstance(rng, _random.Random) else _random.Random(rng)


def random_params(rng, payload, width=320, height=240):
    """Realistic render_scene keyword arguments for a phone held up to a counter scanner.

    Most frames are decodable by a good decoder; a minority are deliberately hard (strong blur,
    glare over the code, tiny modules), as at a real counter."""
    rng = _as_rng(rng)
    n = make_code(payload).symbol_size(border=0)[0]
    fill = rng.uniform(0.35, 0.95)  # fraction of the shorter side the code (no quiet zone) spans
    module_px = max(1.2, fill * min(width, height) / n)
    if rng.random() < 0.3:
        angle = rng.uniform(-180.0, 180.0)
    else:
        angle = rng.uniform(-30.0, 30.0)
    u = rng.random()
    blur = rng.uniform(0.0, 1.0) if u < 0.6 else rng.uniform(1.0, 2.0) if u < 0.9 else rng.uniform(2.0, 3.0)
    params = {
        "module_px": module_px,
        "angle_deg": angle,
        "tilt": (rng.uniform(-30.0, 30.0), rng.uniform(-30.0, 30.0)),
        "center": (0.5 + rng.uniform(-0.1, 0.1), 0.5 + rng.uniform(-0.1, 0.1)),
        "blur": blur,
        "glare": rng.uniform(0.2, 0.9) if rng.random() < 0.5 else 0.0,
        "glare_pos": (rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8)),
        "glare_size": rng.uniform(0.08, 0.25),
        "shading": rng.uniform(0.0, 0.5),
        "contrast": rng.uniform(0.35, 1.0),
        "brightness": rng.uniform(-0.12, 0.12),
        "noise": rng.uniform(1.0, 8.0),
        "inverted": rng.random() < 0.05,
        "mirrored": rng.random() < 0.05,
        "seed": rng.randrange(1 << 31),
    }
    return params


def random_scene(rng, payload, width=320, height=240, **overrides):
    """A frame with random_params(rng, ...) (overridden by keyword arguments)."""
    params = random_params(rng, payload, width, height)
    params.update(overrides)
    return render_scene(payload, width, height, **params)


def scene_to_png(gray, width, height, path=None):
    """PNG bytes of an 8-bit grayscale frame; also written to `path` when given."""
    if len(gray) != width * height:
        raise ValueError("buffer of %d bytes is not %dx%d" % (len(gray), width, height))
    buf = io.BytesIO()
    Image.frombytes("L", (width, height), bytes(gray)).save(buf, format="PNG")
    data = buf.getvalue()
    if path is not None:
        with open(path, "wb") as f:
            f.write(data)
    return data
