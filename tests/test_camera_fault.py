"""A scanner whose camera fails, end to end over a real pty: the virtual scanner (the real firmware
app) with a simulated camera fault, the real bridge (`scanbridge run`, and its SerialLink) and
`scanbridge diag`. The scanner comes up degraded (link up, fault code in HELLO and STATUS, fault
LED pattern), diag turns the code into the fix, and scanning resumes after the camera recovers,
without a reboot. The camera fault is simulated (tools/virtual_scanner/board.py); no ESP32 here."""
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scanbridge.link.serial import SerialLink
from scanbridge.scan import ScanService
from scanbridge_tools.virtual_scanner.frames import QueuedStream
from scanbridge_tools.virtual_scanner.scanner import VirtualScanner

SB = str(Path(sys.executable).with_name("scanbridge"))
FAST_RETRY = {"camera_retry_ms": 200, "camera_retry_max_ms": 400}


def _until(cond, timeout=20.0, what="condition"):
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out waiting for " + what
        time.sleep(0.05)


def _hello_lines(stderr):
    return [json.loads(line.split(" ", 1)[1]) for line in stderr.splitlines() if line.startswith("[hello] ")]


def _leds(vs):
    return [v for _, kind, v in list(vs.board.feedback) if kind == "led" and v is not None]


def _run_bridge(path, seconds, json_out=False):
    cmd = [SB, "run", "--port", path, "--seconds", str(seconds), "--no-counter"] + (["--json"] if json_out else [])
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.timeout(180)
def test_camera_that_will_not_open_is_reported_and_recovers_without_reboot(tmp_path):
    frames = QueuedStream()
    vs = VirtualScanner(frames, fps=20, rto_ms=100, device_id="scan-fault-1", config=FAST_RETRY,
                        camera_open_failures=-1).start()  # the ribbon cable is loose
    try:
        # 1. the bridge connects and hears why this scanner cannot scan
        run = _run_bridge(vs.path, 3)
        out, err = run.communicate(timeout=60)
        assert run.returncode == 0, err
        hellos = _hello_lines(err)
        assert hellos, err
        fault = hellos[0]["hello"]["fault"]
        assert fault["code"] == "camera_init_failed" and "0x105" in fault["message"]
        faults = [json.loads(line.split(" ", 1)[1]) for line in err.splitlines() if line.startswith("[fault] ")]
        assert len(faults) == 1, err  # said once, not with every STATUS
        assert faults[0]["device"] == "scan-fault-1" and faults[0]["code"] == "camera_init_failed"
        assert "Reseat the camera ribbon cable" in faults[0]["fix"] and "board profile" in faults[0]["fix"]
        st = vs.status()
        assert st["fault"]["code"] == "camera_init_failed" and st["fault"]["retries"] >= 2  # backing off
        leds = _leds(vs)
        assert any(leds[i:i + 3] == ["err", "busy", "err"] for i in range(len(leds))), leds  # fault pattern
        assert any(kind == "tone" and v == 300 for _, kind, v in list(vs.board.feedback))

        # 2. diag turns the code into a plain fix
        p = subprocess.run([SB, "diag", "-p", vs.path, "--json", "--no-snapshot", "--count", "2"],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 3, p.stdout + p.stderr  # problems found
        r = json.loads(p.stdout)
        assert r["fault"]["code"] == "camera_init_failed" and r["hello"]["fault"]["code"] == "camera_init_failed"
        assert r["camera"]["ok"] is False and "camera_init_failed" in r["camera"]["error"]
        assert r["selftest"]["camera"]["ok"] is False and r["selftest"]["decoder"]["ok"]  # the rest works
        ids = [x["id"] for x in r["findings"]]
        assert ids[0] == "camera_not_found" and "camera_init_failed" not in ids, ids
        assert "Reseat the camera ribbon cable" in r["findings"][0]["fix"]
        p = subprocess.run([SB, "diag", "-p", vs.path, "--no-snapshot", "--no-selftest", "--count", "1"],
                           capture_output=True, text=True, timeout=120)
        assert "DEGRADED (cannot scan): camera_init_failed: Camera probe failed" in p.stdout, p.stdout
        assert "[camera_not_found]" in p.stdout and "board profile" in p.stdout

        # 3. the technician reseats the cable: the next retry opens the camera, no reboot
        vs.heal_camera()
        _until(lambda: vs.status()["fault"] is None, what="the camera to recover")
        st = vs.status()
        assert vs.app.camera.recoveries == 1 and vs.exit_reason is None and vs._boots == 1

        # 4. scanning resumes: a code shown now goes through the bridge
        run = _run_bridge(vs.path, 8, json_out=True)
        time.sleep(2.0)
        frames.show(b"PAID-AFTER-RESEAT")
        out, err = run.communicate(timeout=60)
        assert run.returncode == 0, err
        recs = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        assert [x["payload"] for x in recs] == ["PAID-AFTER-RESEAT"], out + err
        assert recs[0]["device"] == "scan-fault-1" and recs[0]["verdict"] in ("accepted", "rejected")
        assert all("fault" not in h["hello"] for h in _hello_lines(err)), err

        # 5. diag now calls it intermittent, not broken
        p = subprocess.run([SB, "diag", "-p", vs.path, "--json", "--no-snapshot", "--no-selftest", "--count", "1"],
                           capture_output=True, text=True, timeout=120)
        r = json.loads(p.stdout)
        assert r["fault"] is None and r["camera"]["ok"] is True
        assert [x["id"] for x in r["findings"]] == ["camera_intermittent"], r["findings"]
    finally:
        vs.stop()


@pytest.mark.timeout(120)
def test_run_of_failed_captures_while_scanning_degrades_and_recovers():
    frames = QueuedStream()
    vs = VirtualScanner(frames, fps=30, rto_ms=100, device_id="scan-fault-2",
                        config=dict(FAST_RETRY, camera_fail_limit=5)).start()
    statuses = []
    results = []
    service = ScanService()
    service.add_listener(lambda scan, verdict: results.append((scan.payload, verdict.verdict)))
    link = SerialLink(vs.path, service,
                      on_event=lambda kind, d: statuses.append(d["status"]) if kind == "status" else None).start()
    try:
        assert link.wait_ready(10)
        frames.show(b"BEFORE-FAULT")
        _until(lambda: [p for p, _ in results] == [b"BEFORE-FAULT"], what="the first scan")
        vs.fail_camera(captures=8)  # the ribbon works loose: 5 in a row is a fault, then 3 more
        _until(lambda: any((s.get("fault") or {}).get("code") == "camera_capture_failed" for s in statuses),
               what="STATUS with the capture fault")
        st = next(s for s in statuses if s.get("fault"))
        assert "(5 failed captures in a row)" in st["fault"]["message"] and st["capture_failed"] >= 5
        _until(lambda: statuses[-1].get("fault") is None and vs.app.camera.recoveries == 1,
               what="STATUS after recovery")
        frames.show(b"AFTER-FAULT")
        _until(lambda: [p for p, _ in results] == [b"BEFORE-FAULT", b"AFTER-FAULT"], what="the scan after recovery")
        assert link.device["device"] == "scan-fault-2" and "fault" not in link.device  # never faulty at HELLO
        played = vs.app.feedback.played
        assert "fault" in played and "recovered" in played
    finally:
        link.stop()
        vs.stop()


class _FlakyBoard:
    """A board for the MQTT run: its camera will not open until `fixed`; frames carry payloads."""
    name = "virtual"
    caps = ("scan",)

    def __init__(self):
        self.fixed = False
        self.showing = []
        self.leds = []

    def open_camera(self, frame_size):
        if not self.fixed:
            from scanbridge_fw.hal.base import HalError
            raise HalError("camera_init_failed", "Camera probe failed with error 0x105(ESP_ERR_NOT_FOUND)")

    def close_camera(self):
        pass

    async def capture(self):
        import asyncio
        await asyncio.sleep(0.02)
        return b"", 0, 0

    def led(self, name):
        self.leds.append(name)

    def tone(self, hz):
        pass

    def light(self, on):
        pass

    def unique_id(self):
        return "dev1"

    def mem_free(self):
        return None


@pytest.mark.timeout(120)
def test_over_mqtt_the_fault_is_in_the_retained_status_and_clears(tmp_path):
    """The same degraded mode over WiFi: the firmware's MQTT link against a real Mosquitto, the
    bridge's MQTT link watching presence (its retained STATUS)."""
    import asyncio

    from scanbridge.link.mqtt import start_mqtt_link
    from scanbridge_fw import config
    from scanbridge_fw.app import App, hello_for
    from scanbridge_fw.mqtt_link import MqttLink
    from scanbridge_tools.broker import Broker
    if not Broker.available():
        pytest.skip("mosquitto is not installed")
    broker = Broker(tmp_path / "broker", {"dev1": "pw-dev1"}, {"bridge-a": "pw-a"}).start()
    service = ScanService()
    bridge = start_mqtt_link(broker.url, service, site="s1", group="g1", username="bridge-a", password="pw-a",
                             client_id="bridge-a")

    def status():
        return (bridge.presence().get("dev1") or {}).get("status") or {}

    async def scenario():
        board = _FlakyBoard()
        cfg = dict(config.defaults(), link="mqtt", mqtt_host="127.0.0.1", mqtt_port=broker.port,
                   mqtt_password="pw-dev1", mqtt_site="s1", mqtt_spool=False, **FAST_RETRY)
        from scanbridge_fw.hal.camera_guard import CameraGuard
        camera = CameraGuard(board, cfg)
        assert camera.open() is False  # as start.py does, before the link exists
        link = MqttLink(board, cfg, hello_for(board, cfg, fault=camera.fault), 4242)
        app = App(board, link, lambda g, w, h: list(board.showing), cfg, config_path=str(tmp_path / "c.json"),
                  camera=camera)
        task = asyncio.create_task(app.run())
        deadline = time.monotonic() + 20
        while (status().get("fault") or {}).get("code") != "camera_init_failed":
            assert time.monotonic() < deadline, bridge.presence()
            await asyncio.sleep(0.05)
        seen = dict(status())
        board.fixed = True
        while status().get("fault") is not None or "fault" not in status():
            assert time.monotonic() < deadline + 20, status()
            await asyncio.sleep(0.05)
        board.showing = [b"MQTT-AFTER-FIX"]
        while app.counts["results"] < 1:
            assert time.monotonic() < deadline + 40, app.status()
            await asyncio.sleep(0.05)
        app.stop("test")
        await asyncio.wait_for(task, 10)
        return seen, app

    try:
        seen, app = asyncio.run(scenario())
    finally:
        bridge.stop()
        broker.kill()
    assert "0x105" in seen["fault"]["message"] and seen["online"] is True
    assert app.results[0]["payload"] == b"MQTT-AFTER-FIX" and app.camera.recoveries == 1
    assert "err" in app.board.leds and "busy" in app.board.leds


def test_bridge_prints_each_fault_change_once_and_the_registry_keeps_the_fix():
    import io

    from scanbridge.run import print_fault_change
    from scanbridge.web.registry import ScannerRegistry
    probe = {"code": "camera_init_failed", "message": "Camera probe failed with error 0x105(ESP_ERR_NOT_FOUND)"}
    out = io.StringIO()
    faults = {}
    print_fault_change(faults, {"device": "d1", "hello": {"device": "d1"}}, out)  # fine at HELLO: silent
    print_fault_change(faults, {"device": "d1", "status": {"frames": 3}}, out)  # old firmware: no field
    print_fault_change(faults, {"device": "d1", "status": {"fault": dict(probe, retries=1)}}, out)
    print_fault_change(faults, {"device": "d1", "status": {"fault": dict(probe, retries=2)}}, out)
    short = dict(probe, message=probe["message"][:64], retries=3)  # as STATUS carries it
    print_fault_change(faults, {"device": "d1", "status": {"fault": short}}, out)
    print_fault_change(faults, {"device": "d1", "status": {"fault": None}}, out)
    lines = [json.loads(x.split(" ", 1)[1]) for x in out.getvalue().splitlines()]
    assert [x.get("code") for x in lines] == ["camera_init_failed", None] and lines[1]["cleared"]
    assert lines[0]["fix"].startswith("Reseat the camera ribbon cable")

    reg = ScannerRegistry()
    reg.on_link_event("hello", {"device": "d1", "port": "/dev/pts/3", "hello": {"fw": "0.1", "fault": probe}})
    d = reg.get("d1")
    assert d["online"] and d["fault"]["code"] == "camera_init_failed" and "Reseat" in d["fault_fix"]
    reg.on_link_event("status", {"device": "d1", "status": {"uptime_ms": 1000, "fault": None}})
    assert reg.get("d1")["fault"] is None and reg.get("d1")["fault_fix"] is None
    reg.on_presence("m1", {"online": True, "site": "s", "status": {"online": True, "fault": {
        "code": "camera_capture_failed", "message": "no frame (10 failed captures in a row)"}}})
    assert reg.get("m1")["fault"]["code"] == "camera_capture_failed" and "ribbon" in reg.get("m1")["fault_fix"]


def test_scanners_on_wifi_get_fault_lines_too_from_their_status_through_the_mqtt_link():
    """The MQTT link's presence listener (what `scanbridge run --mqtt` registers) prints the same
    [fault] lines from a WiFi scanner's STATUS as the serial path does from HELLO/STATUS."""
    import io

    from scanbridge.link.mqtt import MqttLink
    from scanbridge.run import presence_fault_printer
    from scanbridge.scan import ScanService
    link = MqttLink(ScanService(), "mqtt://127.0.0.1:1")  # not started: fed its STATUS by hand
    out = io.StringIO()
    link.add_presence_listener(presence_fault_printer({}, out))
    fault = {"code": "camera_init_failed", "message": "Camera probe failed with error 0x105"}
    link._on_status("s1", "cam-7", {"online": True, "fault": fault}, False)
    link._on_status("s1", "cam-7", {"online": True, "fault": fault}, False)  # unchanged: silent
    link._on_status("s1", "cam-7", {"online": True, "fault": None}, False)
    lines = [json.loads(x.split(" ", 1)[1]) for x in out.getvalue().splitlines()]
    assert [(x["device"], x.get("code"), x.get("cleared")) for x in lines] == [
        ("cam-7", "camera_init_failed", None), ("cam-7", None, True)]
    assert lines[0]["fix"].startswith("Reseat the camera ribbon cable")


@pytest.mark.timeout(120)
def test_counter_page_shows_a_degraded_scanner_and_its_fix(tmp_path):
    import os
    chromium = "/usr/bin/chromium"
    if not os.path.exists(chromium):
        pytest.skip("Debian chromium not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    from scanbridge.counter import Counter
    from scanbridge.web.registry import ScannerRegistry
    from scanbridge.web.server import CounterWeb
    counter = Counter(str(tmp_path / "counter.db"))
    registry = ScannerRegistry()
    service = counter.attach(ScanService())
    web = CounterWeb(counter, registry, port=0).start()
    vs = VirtualScanner(QueuedStream(), fps=15, device_id="scan-page-1", config=FAST_RETRY,
                        camera_open_failures=-1).start()
    link = SerialLink(vs.path, service, on_event=registry.on_link_event).start()
    sel = "li[data-device='scan-page-1']"
    try:
        assert link.wait_ready(10)
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page()
            page.goto(web.url)
            page.wait_for_selector(sel + " .fault")
            text = page.inner_text(sel)
            assert "Cannot scan: camera_init_failed" in text and "0x105" in text
            assert "Fix: Reseat the camera ribbon cable" in text
            vs.heal_camera()  # reseated: the page clears without a reload
            page.wait_for_selector(sel + " .fault", state="detached", timeout=30000)
            assert "online" in page.inner_text(sel)
            browser.close()
    finally:
        link.stop()
        vs.stop()
        web.stop()
        counter.stop()


def test_a_worst_case_fault_still_fits_in_one_mqtt_status():
    """The fault rides in every STATUS: with the longest message, the HELLO fields the MQTT link
    adds, WiFi fields and counters after weeks of scanning, STATUS must still encode
    (wire.MAX_BODY)."""
    import asyncio

    from scanbridge_fw import config, topics, wire
    from scanbridge_fw.app import App, hello_for
    from scanbridge_fw.hal.base import HalError
    from scanbridge_fw.hal.camera_guard import CameraGuard
    from scanbridge_fw.mqtt_link import MqttLink

    class Board(_FlakyBoard):
        name = "freenove-esp32-s3-wroom-cam"
        caps = ("scan", "status", "commands", "usb_cdc")

        def open_camera(self, frame_size):
            raise HalError("camera_init_failed", "E" * 500)

        def unique_id(self):
            return "24a160c3d1f0"

        def mem_free(self):
            return 8123456

    async def build():
        board = Board()
        cfg = dict(config.defaults(), link="mqtt", mqtt_host="broker.store-12.example", mqtt_spool=False,
                   device_name="x" * 32)
        cam = CameraGuard(board, cfg)
        cam.open()
        link = MqttLink(board, cfg, hello_for(board, cfg, fault=cam.fault), 2 ** 31 - 1)
        app = App(board, link, lambda g, w, h: [], cfg, camera=cam)
        for k in app.counts:
            app.counts[k] = 999999  # weeks of uptime
        app.counts["frames"] = 99999999
        st = app.status()
        st.update({"ssid": "S" * 32, "rssi": -100, "ip": "255.255.255.255", "joins": 99999, "losses": 99999})
        return st, dict(link.mqtt.hello)

    st, hello = asyncio.run(build())
    assert len(st["fault"]["message"]) == 64 and len(hello["fault"]["message"]) == 160
    body = dict(hello)
    body.update(st)
    body.update({"online": True, "device": "24a160c3d1f0", "proto": 1, "session": 2 ** 31 - 1})
    topics.pack(wire.STATUS, 2 ** 31 - 1, 0, body)  # raises WireError("oversize") past MAX_BODY
