"""Deploy, rollback, provision and batch against a REAL MicroPython REPL: the official
WebAssembly port under Node, served on a pty (tests/support/repl_pty.py) and driven through
mpremote's SerialTransport exactly as a USB-serial board would be."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scanbridge_tools.build import build
from scanbridge_tools.flashing import deploy as dep
from scanbridge_tools.flashing.device import Device
from scanbridge_tools.flashing.errors import FlashError
from scanbridge_tools.flashing.provision import provision, settings_from
from tests.support.repl_pty import ReplPty, available

pytestmark = pytest.mark.skipif(not available(), reason="node or the MicroPython npm package is missing")
ROOT = Path(__file__).resolve().parents[1]
SB = str(Path(sys.executable).with_name("scanbridge"))


SMALL = ("__init__.py", "bootguard.py", "config.py", "dedupe.py", "wire.py", "device/boot.py", "device/main.py",
         "hal/__init__.py", "hal/camera_guard.py", "mqtt_settings.py", "settings.py", "assist.py", "commands.py",
         "snapshot.py", "compat.py", "errors.py")


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """Two builds of a small app (a few real firmware modules, so the mechanics run in seconds):
    as it is, and with one module changed. The whole firmware is deployed in its own test."""
    base = tmp_path_factory.mktemp("b")
    for name, mark in (("a", ""), ("b", "\nDEPLOY_MARK = 2\n")):
        fw = base / ("fw_" + name)
        for rel in SMALL:
            (fw / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / "firmware" / rel, fw / rel)
        (fw / "dedupe.py").write_text((fw / "dedupe.py").read_text() + mark)
        (fw / "app.py").write_text('FW_VERSION = "0.0.1"\n')
    return base / "a", build(base / "a", fw_dir=base / "fw_a"), base / "b", build(base / "b", fw_dir=base / "fw_b")


@pytest.fixture()
def repl():
    with ReplPty() as r:
        yield r


def _live_hashes(path):
    with Device(path) as d:
        return dep._hashes_under(d, dep.LIVE)


def _want(manifest):
    return {k: v["sha256"] for k, v in dep._app_files(manifest).items()}


def test_whole_firmware_deploys_verified_boots_then_is_up_to_date(repl, tmp_path):
    full = build(tmp_path / "full")  # every firmware module, compiled for xtensawin
    r1 = dep.deploy(repl.path, tmp_path / "full")
    assert r1["switched"] and r1["recovered"] == "no_app"
    assert len(r1["uploaded"]) == len(_want(full))
    assert _live_hashes(repl.path) == _want(full)
    # boot.py from the build imports the deployed .mpy package and runs the boot guard.
    with Device(repl.path) as d:
        out = d.exec("import sys\nif '/lib' not in sys.path: sys.path.append('/lib')\n"
                     "exec(open('/boot.py').read())\nprint(open('/bootcount').read())\n"
                     "import scanbridge_fw.wire as w\nprint(w.PROTOCOL_VERSION)")
    assert out.split() == [b"1", b"1"]
    sent_before = repl.to_device
    r2 = dep.deploy(repl.path, tmp_path / "full")
    assert r2["up_to_date"] and r2["bytes_sent"] == 0 and r2["uploaded"] == []
    assert repl.to_device - sent_before < 20000  # only the hashing code went over, no file


def test_incremental_deploy_sends_only_the_changed_file_and_rollback(repl, builds):
    a_dir, a, b_dir, b = builds
    dep.deploy(repl.path, a_dir)
    r = dep.deploy(repl.path, b_dir)
    assert r["uploaded"] == ["dedupe.mpy"]
    assert r["copied_on_device"] == len(_want(b)) - 1
    assert _live_hashes(repl.path) == _want(b)
    back = dep.rollback(repl.path)
    assert back["rolled_back"]
    assert _live_hashes(repl.path) == _want(a)


def test_device_that_stops_answering_mid_deploy_keeps_the_old_app(repl, builds):
    a_dir, a, b_dir, b = builds
    dep.deploy(repl.path, a_dir)
    # Force a full upload of build b and cut the line after some bytes of it.
    def cut(stage, done=None, total=None):
        if stage == "upload" and done and done > 4000:
            repl.hang()
    with pytest.raises(FlashError) as e:
        dep.deploy(repl.path, b_dir, force=True, timeout_s=2, progress=cut)
    assert e.value.code == "device_timeout"
    repl.unhang()
    assert _live_hashes(repl.path) == _want(a)  # untouched: the switch never happened
    r = dep.deploy(repl.path, b_dir)  # the technician runs it again
    assert r["switched"] and _live_hashes(repl.path) == _want(b)


def test_switch_cut_between_its_renames_is_finished_on_next_contact(repl, builds):
    a_dir, a, b_dir, b = builds
    dep.deploy(repl.path, a_dir)
    dep.deploy(repl.path, b_dir)
    with Device(repl.path) as d:  # as if power went between "live -> old" and "new -> live"
        d.exec("import os\nos.rename(%r,%r)" % (dep.LIVE, dep.STAGING))
        assert not d.exists(dep.LIVE)
        assert dep.recover(d) == "finished_switch"
    assert _live_hashes(repl.path) == _want(b)


def test_boot_py_finishes_a_cut_switch_before_the_app_starts(repl, builds):
    """No technician around: the board's own boot.py takes the verified new app."""
    a_dir, a, b_dir, b = builds
    dep.deploy(repl.path, a_dir)
    dep.deploy(repl.path, b_dir)
    with Device(repl.path) as d:
        d.exec("import os\nos.rename(%r,%r)" % (dep.LIVE, dep.STAGING))
        out = d.exec("import sys\nif '/lib' not in sys.path: sys.path.append('/lib')\n"
                     "exec(open('/boot.py').read())\nprint(open('/bootcount').read())")
        assert out.split() == [b"1"]  # the boot guard ran from the restored app
    assert _live_hashes(repl.path) == _want(b)


def test_unverified_staging_is_never_switched_in(repl, builds):
    a_dir, a, b_dir, _ = builds
    dep.deploy(repl.path, a_dir)
    with Device(repl.path) as d:  # a staging folder without its marker: an upload that was cut
        d.exec("import os\nos.rename(%r,%r)\nos.mkdir(%r)" % (dep.LIVE, dep.PREVIOUS, dep.STAGING))
        assert dep.recover(d) == "restored_previous"
    assert _live_hashes(repl.path) == _want(a)


def test_wrong_port_and_silent_port_errors():
    with pytest.raises(FlashError) as e:
        Device("/dev/no-such-scanner").open()
    assert e.value.code == "port_not_found"
    master, slave = os.openpty()  # a tty with nothing behind it (ROM bootloader, wrong device)
    try:
        with pytest.raises(FlashError) as e:
            Device(os.ttyname(slave), timeout_s=1).open()
        assert e.value.code == "not_micropython" and e.value.fix
    finally:
        os.close(master)
        os.close(slave)


def _device_config(path):
    with Device(path) as d:
        return json.loads(d.read_file("/config.json")), json.loads(d.read_file("/board.json"))


def test_provision_writes_config_and_profile_atomically(repl, builds):
    a_dir, _, _, _ = builds
    dep.deploy(repl.path, a_dir)
    s = settings_from(device_id="scan-042", site="store-9", link="mqtt", board="ai-thinker-esp32-cam",
                      wifi=[{"ssid": "shop", "password": "wifi-secret-1"}], broker="127.0.0.1:1883",
                      mqtt_user="scan-042", mqtt_password="mqtt-secret-2")
    r = provision(repl.path, s)
    assert r["device_check"] == "ok"  # the firmware's config.load() accepted it on the device
    assert "wifi-secret-1" not in json.dumps(r) and "mqtt-secret-2" not in json.dumps(r)
    cfg, board = _device_config(repl.path)
    assert cfg["device_name"] == "scan-042" and cfg["mqtt_site"] == "store-9" and cfg["link"] == "mqtt"
    assert cfg["wifi"] == [{"ssid": "shop", "password": "wifi-secret-1"}] and cfg["mqtt_port"] == 1883
    assert board["id"] == "ai-thinker-esp32-cam"
    with Device(repl.path) as d:
        assert not d.exists("/config.json.tmp")


def test_half_written_config_is_named_and_repaired(repl):
    with Device(repl.path) as d:
        d.write_file("/config.json", b'{"link": "mqtt", "wifi": [{"ssid": "sh')
    r = provision(repl.path, settings_from(device_id="scan-1", board="ai-thinker-esp32-cam"))
    assert r["repaired"].startswith("config_corrupt")
    assert r["device_check"] == "no_app"  # nothing deployed here; the file itself is checked
    cfg, _ = _device_config(repl.path)
    assert cfg["device_name"] == "scan-1" and cfg["link"] == "serial"


def test_invalid_settings_are_refused_before_anything_is_written(repl):
    with pytest.raises(FlashError) as e:
        provision(repl.path, settings_from(link="mqtt", board="ai-thinker-esp32-cam"))
    assert e.value.code == "config_invalid"
    with pytest.raises(FlashError) as e:
        provision(repl.path, settings_from(board="esp8266-toaster"))
    assert e.value.code == "unknown_board" and "ai-thinker-esp32-cam" in e.value.fix
    with Device(repl.path) as d:
        assert not d.exists("/config.json")


def test_cli_provision_never_echoes_secrets(repl, builds):
    a_dir, _, _, _ = builds
    env = dict(os.environ, SCANBRIDGE_WIFI_PASSWORD="pw-wifi-XYZ", SCANBRIDGE_MQTT_PASSWORD="pw-mqtt-XYZ")
    p = subprocess.run([SB, "flash", "provision", "-p", repl.path, "--id", "scan-5", "--site", "s1",
                        "--board", "ai-thinker-esp32-cam", "--link", "mqtt", "--wifi", "shop",
                        "--broker", "127.0.0.1", "--mqtt-user", "scan-5", "--no-prompt"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "XYZ" not in p.stdout + p.stderr and '"***"' in p.stdout
    p = subprocess.run([SB, "flash", "provision", "-p", repl.path, "--wifi", "other", "--no-prompt"],
                       capture_output=True, text=True, timeout=60, env={k: v for k, v in os.environ.items()
                                                                       if not k.startswith("SCANBRIDGE_")})
    assert p.returncode == 1 and "secret_missing" in p.stderr


def test_cli_batch_prints_a_label_per_board(repl, builds):
    a_dir, a, _, _ = builds
    p = subprocess.run([SB, "flash", "batch", "--count", "2", "--start", "7", "--id-pattern", "shop-{n:02d}",
                        "--port", repl.path, "--no-wait", "--build", str(a_dir), "--site", "store-3",
                        "--board", "ai-thinker-esp32-cam"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    labels = [l for l in p.stdout.splitlines() if l.startswith("LABEL")]
    assert len(labels) == 2
    assert "shop-07" in labels[0] and "shop-08" in labels[1]
    assert all(("fw %s" % a["fw"]) in l and "site store-3" in l for l in labels)
