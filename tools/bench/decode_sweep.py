"""`scanbridge bench decode-sweep`: where each QR decoder gives up, against blur and module size.

Generates phone-screen scenes (scanbridge_tools.scenes) at QVGA, sweeping one degradation at a time
while the others stay moderate, decodes each frame with ours, zxing-cpp, zbar and quirc (the same
8-bit buffer for all), and plots success rate against defocus blur (gaussian sigma, camera pixels)
and against module size (camera pixels per module). The scene set is fixed by --seed, so runs are
comparable across decoder versions.

    scanbridge bench decode-sweep [--per-point N] [--seed S] [--out docs/img/decode_sweep.png]
                                  [--json] [--decoders scanbridge,zxing,zbar,quirc]
"""
import json
import os
import random
import sys
import time

from scanbridge_tools import scenes
from scanbridge_tools.bench import decode as bench

BLUR_SIGMAS = (0.0, 0.5, 1.0, 1.25, 1.5, 1.625, 1.75, 1.875, 2.0, 2.5)
BLUR_MODULE_PX = 4.0
MODULE_PXS = (1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.5)
MODULE_BLUR = 0.5
DEFAULT_OUT = os.path.join("docs", "img", "decode_sweep.png")
_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _payload(rng):
    # Wallet-style token: a short prefix and a base64url body, ~70 characters (version 4-5 at M).
    return "SB1." + "".join(rng.choice(_B64URL) for _ in range(rng.randrange(60, 72)))


def _scene_params(rng):
    """The moderate conditions every sweep point shares (only the swept parameter differs)."""
    return {
        "angle_deg": rng.uniform(-20.0, 20.0),  # the whole code stays in the frame at 4.5 px
        "tilt": (rng.uniform(-15.0, 15.0), rng.uniform(-15.0, 15.0)),
        "center": (0.5 + rng.uniform(-0.05, 0.05), 0.5 + rng.uniform(-0.05, 0.05)),
        "contrast": rng.uniform(0.6, 0.9),
        "brightness": rng.uniform(-0.05, 0.05),
        "shading": rng.uniform(0.0, 0.3),
        "noise": rng.uniform(1.5, 4.0),
        "seed": rng.randrange(1 << 31),
    }


def sweep_points(per_point, seed):
    """[(axis, value, payload, render kwargs)] for both sweeps; deterministic for a seed."""
    rng = random.Random(seed)
    points = []
    for sigma in BLUR_SIGMAS:
        for _ in range(per_point):
            kw = _scene_params(rng)
            kw.update(module_px=BLUR_MODULE_PX, blur=sigma)
            points.append(("blur", sigma, _payload(rng), kw))
    for px in MODULE_PXS:
        for _ in range(per_point):
            kw = _scene_params(rng)
            kw.update(module_px=px, blur=MODULE_BLUR)
            points.append(("module_px", px, _payload(rng), kw))
    return points


def run_sweep(decoders, per_point=20, seed=1, width=320, height=240, progress=None):
    """{decoder: {axis: {value: [ok, total]}}} plus seconds spent per decoder."""
    out = {name: {"blur": {}, "module_px": {}} for name in decoders}
    seconds = {name: 0.0 for name in decoders}
    errors = {name: 0 for name in decoders}
    for axis, value, payload, kw in sweep_points(per_point, seed):
        gray, w, h = scenes.render_scene(payload, width, height, **kw)
        for name, fn in decoders.items():
            t0 = time.perf_counter()
            try:
                got = fn(gray, w, h)
            except Exception:  # a decoder that fails or is missing scores a miss
                got = []
                errors[name] += 1
            seconds[name] += time.perf_counter() - t0
            cell = out[name][axis].setdefault(value, [0, 0])
            cell[0] += int(payload in [bench.as_text(p) for p in got])
            cell[1] += 1
        if progress:
            progress()
    return out, seconds, errors


def plot(results, path, title=""):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    styles = {"scanbridge": ("C3", "o", 2.5), "zxing": ("C0", "s", 1.5), "zbar": ("C2", "^", 1.5),
              "quirc": ("C1", "v", 1.5)}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, axis, xlabel in ((axes[0], "blur", "defocus blur: gaussian sigma (camera pixels)"),
                             (axes[1], "module_px", "module size (camera pixels per module)")):
        for name, per_axis in results.items():
            cells = sorted(per_axis[axis].items())
            xs = [v for v, _ in cells]
            ys = [100.0 * c[0] / c[1] if c[1] else 0.0 for _, c in cells]
            color, marker, lw = styles.get(name, (None, "x", 1.5))
            ax.plot(xs, ys, marker=marker, color=color, linewidth=lw, label=name)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("decoded (%)")
        ax.set_ylim(-3, 103)
        ax.grid(True, alpha=0.3)
    axes[0].set_title("blur sweep (module %.1f px)" % BLUR_MODULE_PX)
    axes[1].set_title("module-size sweep (blur sigma %.1f px)" % MODULE_BLUR)
    axes[1].legend(loc="lower right")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def format_table(results):
    lines = []
    names = list(results)
    for axis, values in (("blur", BLUR_SIGMAS), ("module_px", MODULE_PXS)):
        lines.append("%-10s " % axis + " ".join("%12s" % n for n in names))
        for v in values:
            cells = []
            for n in names:
                ok, total = results[n][axis].get(v, [0, 0])
                cells.append("%12s" % ("%d/%d %3.0f%%" % (ok, total, 100.0 * ok / total) if total else "-"))
            lines.append("%-10s " % v + " ".join(cells))
        lines.append("")
    return "\n".join(lines)


def add_arguments(parser):
    parser.add_argument("--per-point", type=int, default=20, help="scenes per sweep point (default 20)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default=DEFAULT_OUT, help="PNG plot path (default %s); '' for none" % DEFAULT_OUT)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--decoders", default=",".join(bench.ALL_DECODERS))


def main(args):
    try:
        decoders = bench.load_decoders([n.strip() for n in args.decoders.split(",") if n.strip()])
    except ValueError as e:
        print("bench decode-sweep: %s" % e, file=sys.stderr)
        return 2
    if args.per_point < 1:
        print("bench decode-sweep: --per-point must be at least 1", file=sys.stderr)
        return 2
    t0 = time.time()
    results, seconds, errors = run_sweep(decoders, args.per_point, args.seed)
    frames = args.per_point * (len(BLUR_SIGMAS) + len(MODULE_PXS))
    if args.out:
        plot(results, args.out, "QVGA phone-screen scenes, %d per point, seed %d" % (args.per_point, args.seed))
    if args.json:
        print(json.dumps({name: {axis: {str(v): {"ok": c[0], "total": c[1]} for v, c in sorted(per_axis[axis].items())}
                                 for axis in per_axis} | {"ms_per_image": round(1000.0 * seconds[name] / frames, 3),
                                                          "errors": errors[name]}
                          for name, per_axis in results.items()}))
        return 0
    print("bench decode-sweep: %d scenes, %.0f s" % (frames, time.time() - t0))
    print(format_table(results))
    print("ms/image: " + ", ".join("%s %.1f" % (n, 1000.0 * s / frames) for n, s in seconds.items()))
    if any(errors.values()):
        print("errors: " + ", ".join("%s %d" % (n, e) for n, e in errors.items() if e))
    if args.out:
        print("plot: %s" % args.out)
    return 0
