"""Deploy the built app to a board with mpremote: only what changed goes over the cable, every
file is verified by its sha256 computed on the device, and the running app is replaced in one
rename only after the new one is complete and verified.

On the device:
    /lib/scanbridge_fw        the live app
    /lib/scanbridge_fw.new    staging: filled (unchanged files copied on the device, changed ones
                              uploaded), verified, then marked with DEPLOYED.json
    /lib/scanbridge_fw.old    the previous app, kept for `scanbridge flash rollback`
A cut cable or power loss leaves the live app untouched until the switch; the switch is two
renames, and `recover()` (run at the start of every deploy/rollback) finishes or undoes a
switch that was cut between them, so the board always has one complete, verified app."""
from __future__ import annotations

import json
from pathlib import Path

from scanbridge_tools.build import APP_DIR, load_manifest
from scanbridge_tools.flashing.device import Device
from scanbridge_tools.flashing.errors import FlashError

LIVE = "/" + APP_DIR
STAGING = LIVE + ".new"
PREVIOUS = LIVE + ".old"
MARKER = "DEPLOYED.json"
ROOT_FILES = ("boot.py", "main.py", "board.json")  # written one by one, each tmp + rename
SKIP = ("config.default.json",)  # provision writes /config.json; deploy never touches settings


def _app_files(manifest):
    prefix = APP_DIR + "/"
    return {k[len(prefix):]: v for k, v in manifest["files"].items() if k.startswith(prefix)}


def _root_files(manifest):
    return {k: v for k, v in manifest["files"].items() if "/" not in k and k not in SKIP}


def _hashes_under(dev: Device, root: str) -> dict:
    """{relative path: sha256} of every file below root on the device."""
    paths = [p for p in dev.listdir_recursive(root) if not p.endswith("/" + MARKER)]
    if not paths:
        return {}
    hashes = dev.sha256(paths)
    return {p[len(root) + 1:]: h for p, h in hashes.items()}


def _marker_ok(dev: Device, root: str) -> bool:
    return dev.exists(root + "/" + MARKER)


def recover(dev: Device) -> str:
    """Finish or undo a switch that was cut between its two renames. Returns what it did."""
    if dev.exists(LIVE):
        return "ok"
    if dev.exists(STAGING) and _marker_ok(dev, STAGING):
        dev.exec("import os\nos.rename(%r,%r)" % (STAGING, LIVE))
        return "finished_switch"
    if dev.exists(PREVIOUS):
        dev.exec("import os\nos.rename(%r,%r)" % (PREVIOUS, LIVE))
        return "restored_previous"
    return "no_app"


def plan(manifest: dict, live: dict) -> dict:
    """What to do, from the manifest and the live app's hashes on the device."""
    want = _app_files(manifest)
    same = sorted(p for p, f in want.items() if live.get(p) == f["sha256"])
    upload = sorted(p for p in want if p not in same)
    stale = sorted(p for p in live if p not in want)
    return {"same": same, "upload": upload, "stale": stale}


def deploy(port: str, build_dir: Path, timeout_s: float = 10.0, force: bool = False,
           progress=None, device: Device | None = None) -> dict:
    """Deploy build_dir (from `scanbridge build`) to the board on `port`; return a report.

    progress(stage, done, total) is called as it goes (stages: hash, copy, upload, verify,
    switch, root)."""
    manifest = load_manifest(build_dir)
    build_dir = Path(build_dir)
    want = _app_files(manifest)
    report = {"port": port, "fw": manifest["fw"], "uploaded": [], "copied_on_device": 0,
              "root_written": [], "switched": False, "recovered": "ok", "bytes_sent": 0}
    own = device is None
    dev = device or Device(port, timeout_s=timeout_s).open()
    try:
        report["recovered"] = recover(dev)
        step = progress or (lambda *a: None)
        step("hash", 0, 1)
        live = {} if force else _hashes_under(dev, LIVE)
        step("hash", 1, 1)
        todo = plan(manifest, live)
        report["unchanged"] = len(todo["same"])
        root = _root_files(manifest)
        root_live = dev.sha256(["/" + n for n in root]) if root else {}
        root_todo = sorted(n for n, f in root.items() if force or root_live.get("/" + n) != f["sha256"])
        if not todo["upload"] and not todo["stale"] and not root_todo and live:
            report["up_to_date"] = True
            return report
        report["up_to_date"] = False
        if todo["upload"] or todo["stale"] or not live:
            _stage(dev, build_dir, want, todo, report, step)
            _verify_staging(dev, want, manifest, step)
            _switch(dev, step)
            report["switched"] = True
        for i, name in enumerate(root_todo):
            data = (build_dir / name).read_bytes()
            _write_atomic(dev, "/" + name, data, root[name]["sha256"])
            report["root_written"].append(name)
            report["bytes_sent"] += len(data)
            step("root", i + 1, len(root_todo))
        final = _hashes_under(dev, LIVE)
        bad = sorted(p for p, f in want.items() if final.get(p) != f["sha256"])
        if bad:
            raise FlashError("verify_failed", "after the switch %d files differ: %s" % (len(bad), ", ".join(bad[:5])),
                             "run `scanbridge flash rollback` or deploy again with --force")
        return report
    finally:
        if own:
            dev.close()


def _stage(dev, build_dir, want, todo, report, step):
    dev.remove_tree(STAGING)
    dirs = {STAGING}
    for rel in want:
        parts = rel.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add(STAGING + "/" + "/".join(parts[:i]))
    dev.makedirs(sorted(dirs, key=len))
    if todo["same"]:
        # Unchanged files are copied on the device: nothing crosses the cable for them.
        dev.exec("_b=bytearray(1024)\nfor _p in %s:\n with open(%r+'/'+_p,'rb') as _s, open(%r+'/'+_p,'wb') as _d:\n"
                 "  while True:\n   _n=_s.readinto(_b)\n   if not _n: break\n   _d.write(_b[:_n])"
                 % (json.dumps(todo["same"]), LIVE, STAGING), timeout_s=max(dev.timeout_s, len(todo["same"])))
        report["copied_on_device"] = len(todo["same"])
        step("copy", 1, 1)
    total = sum(want[p]["size"] for p in todo["upload"])
    sent = 0
    for rel in todo["upload"]:
        data = (build_dir / APP_DIR / rel).read_bytes()
        base = sent
        dev.write_file(STAGING + "/" + rel, data, progress=lambda n, b=base: step("upload", b + n, total))
        sent += len(data)
        report["uploaded"].append(rel)
    report["bytes_sent"] += sent


def _verify_staging(dev, want, manifest, step):
    step("verify", 0, 1)
    got = _hashes_under(dev, STAGING)
    bad = sorted(p for p, f in want.items() if got.get(p) != f["sha256"])
    extra = sorted(p for p in got if p not in want)
    if bad or extra:
        dev.remove_tree(STAGING)
        raise FlashError("verify_failed", "staged files differ from the build: %s" % ", ".join((bad + extra)[:5]),
                         "the live app is unchanged; deploy again (check the cable if it repeats)")
    marker = json.dumps({"fw": manifest["fw"], "files": {p: f["sha256"] for p, f in want.items()}}).encode()
    dev.write_file(STAGING + "/" + MARKER, marker)
    step("verify", 1, 1)


def _switch(dev, step):
    step("switch", 0, 1)
    dev.remove_tree(PREVIOUS)
    # The two renames: between them the board has no live app, and recover() completes it.
    dev.exec("import os\ntry:\n os.rename(%r,%r)\nexcept OSError:\n pass\nos.rename(%r,%r)"
             % (LIVE, PREVIOUS, STAGING, LIVE))
    step("switch", 1, 1)


def _write_atomic(dev, path, data, sha):
    tmp = path + ".tmp"
    dev.write_file(tmp, data)
    got = dev.sha256([tmp])[tmp]
    if got != sha:
        dev.exec("import os\nos.remove(%r)" % tmp)
        raise FlashError("verify_failed", "%s arrived damaged" % path, "deploy again")
    dev.exec("import os\ntry:\n os.rename(%r,%r)\nexcept OSError:\n os.remove(%r)\n os.rename(%r,%r)"
             % (tmp, path, path, tmp, path))


def rollback(port: str, timeout_s: float = 10.0, device: Device | None = None) -> dict:
    """Put the previous app back (the current one becomes the previous)."""
    own = device is None
    dev = device or Device(port, timeout_s=timeout_s).open()
    try:
        recovered = recover(dev)
        if not dev.exists(PREVIOUS):
            raise FlashError("no_previous", "no previous app on the device (%s missing)" % PREVIOUS,
                             "deploy a known-good build instead")
        dev.exec("import os\nos.rename(%r,%r)\nos.rename(%r,%r)\nos.rename(%r,%r)"
                 % (LIVE, STAGING, PREVIOUS, LIVE, STAGING, PREVIOUS))
        fw = None
        if dev.exists(LIVE + "/" + MARKER):
            fw = json.loads(dev.read_file(LIVE + "/" + MARKER)).get("fw")
        return {"port": port, "rolled_back": True, "fw": fw, "recovered": recovered}
    finally:
        if own:
            dev.close()
