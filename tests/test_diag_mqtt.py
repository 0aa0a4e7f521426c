"""`scanbridge diag --mqtt`: the real firmware app with its real MQTT link (CPython, virtual
board) on a real Mosquitto started by the test, diagnosed through the broker as a bridge user."""
import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from scanbridge_fw import config as config_mod
from scanbridge_fw import mqtt_settings  # noqa: F401  registers the MQTT keys
from scanbridge_fw.app import App, hello_for
from scanbridge_fw.mqtt_link import MqttLink
from scanbridge_tools.broker import Broker
from scanbridge_tools.diagnostics.errors import DiagError
from scanbridge_tools.diagnostics.mqtt_transport import MqttDiag
from scanbridge_tools.virtual_scanner.board import VirtualBoard
from scanbridge_tools.virtual_scanner.frames import render

pytestmark = pytest.mark.skipif(not Broker.available(), reason="mosquitto is not installed")
SB = str(Path(sys.executable).with_name("scanbridge"))
DEVICES = {"scan-m1": "pw-dev"}
BRIDGES = {"tech": "pw-tech"}
SITE = "store7"
CODE = b"DIAG-OVER-MQTT-0001"


def _decode(gray, w, h):
    import numpy as np
    import zxingcpp
    img = np.frombuffer(bytes(gray), dtype=np.uint8).reshape(h, w)
    return [bytes(r.bytes) for r in zxingcpp.read_barcodes(img)]


class Scanner:
    def __init__(self, broker, tmp_path):
        frame = render(CODE)

        def frames():
            while True:
                yield frame
        self.board = VirtualBoard(frames(), None, device_id="scan-m1", fps=10)
        self.cfg = config_mod.validate({"link": "mqtt", "mqtt_host": "127.0.0.1", "mqtt_port": broker.port,
                                        "mqtt_user": "scan-m1", "mqtt_password": "pw-dev", "mqtt_site": SITE,
                                        "mqtt_device": "scan-m1", "mqtt_spool": False, "status_interval_ms": 1000})
        self.path = str(tmp_path / "config.json")
        self.loop = asyncio.new_event_loop()
        self.app = None
        self.thread = threading.Thread(target=self._main, daemon=True)

    def _main(self):
        asyncio.set_event_loop(self.loop)
        link = MqttLink(self.board, self.cfg, hello_for(self.board, self.cfg), 4321)
        self.app = App(self.board, link, _decode, self.cfg, config_path=self.path)
        self.loop.run_until_complete(self.app.run())
        for t in asyncio.all_tasks(self.loop):
            t.cancel()

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        if self.app is not None:
            self.loop.call_soon_threadsafe(self.app.stop, "stopped")
        self.thread.join(5)


@pytest.fixture()
def setup(tmp_path):
    b = Broker(tmp_path / "broker", DEVICES, BRIDGES).start()
    s = Scanner(b, tmp_path).start()
    yield b, s
    s.stop()
    b.kill()


def _diag(broker):
    return MqttDiag(broker.url, SITE, "scan-m1", "tech", "pw-tech", timeout_s=10)


def test_commands_snapshot_and_selftest_over_mqtt(setup):
    broker, _ = setup
    from scanbridge_tools.diagnostics.report import gather
    with _diag(broker) as t:
        deadline = time.monotonic() + 10
        while True:  # the scanner needs a moment to connect
            try:
                t.command("ping", timeout_s=1)
                break
            except DiagError:
                assert time.monotonic() < deadline, "scanner never answered over MQTT"
        f = gather(t, pings=3)
    assert f["info"]["device"] == "scan-m1" and f["info"]["link"] == "mqtt"
    assert f["selftest"]["decoder"]["ok"] and f["selftest"]["ok"]
    assert f["snapshot"]["verdict"] == "code_readable" and f["snapshot"]["decoded"][0]["text"] == CODE.decode()
    assert f["latency"]["count"] == 3
    assert f["health"]["link"]["link"] == "mqtt"


def test_cli_over_mqtt_and_wrong_credentials(setup):
    broker, _ = setup
    env = dict(os.environ, SCANBRIDGE_MQTT_PASSWORD="pw-tech")
    deadline = time.monotonic() + 15
    while True:
        p = subprocess.run([SB, "diag", "--mqtt", broker.url, "--site", SITE, "--device", "scan-m1", "--user", "tech",
                            "info", "--json", "--timeout", "2"], capture_output=True, text=True, env=env, timeout=60)
        if p.returncode == 0 or time.monotonic() > deadline:
            break
    assert p.returncode == 0, p.stdout + p.stderr
    assert json.loads(p.stdout)["device"] == "scan-m1"
    assert "pw-tech" not in p.stdout + p.stderr
    env["SCANBRIDGE_MQTT_PASSWORD"] = "wrong"
    p = subprocess.run([SB, "diag", "--mqtt", broker.url, "--site", SITE, "--device", "scan-m1", "--user", "tech",
                        "info", "--json", "--timeout", "2"], capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 1 and json.loads(p.stdout)["error"]["code"] == "broker_refused"
