"""Board profiles (hardware/boards/*.json) and their loader; USB discovery built on them."""
import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from scanbridge.link import discovery
from scanbridge_hw import profiles


def test_shipped_profiles_validate():
    ids = profiles.ids()
    assert "ai-thinker-esp32-cam" in ids and "freenove-esp32-s3-wroom-cam" in ids
    cam = profiles.load("ai-thinker-esp32-cam")
    assert cam["leds"][cam["feedback"]["err"]] == {"pin": 33, "active_low": True, "colour": "red", "external": False}
    assert cam["leds"][cam["feedback"]["light"]]["pin"] == 4
    assert cam["camera"]["model"] == "OV2640" and cam["serial"]["kind"] == "uart0"
    s3 = profiles.load("freenove-esp32-s3-wroom-cam")
    assert "303a:1001" in s3["serial"]["usb_ids"] and s3["flash"]["micropython_offset"] == "0x0"


def _broken(mutate):
    p = copy.deepcopy(profiles.load("ai-thinker-esp32-cam"))
    mutate(p)
    with pytest.raises(profiles.ProfileError) as e:
        profiles.validate(p)
    return str(e.value)


def test_validation_names_the_field():
    assert "camera.pins.data" in _broken(lambda p: p["camera"]["pins"]["data"].pop())
    assert "leds.red.pin" in _broken(lambda p: p["leds"]["red"].update(pin=35))  # input-only
    assert "already" in _broken(lambda p: p["leds"]["green"].update(pin=4))  # flash LED's pin
    assert "GPIO60" in _broken(lambda p: p["buzzer"].update(pin=60))
    assert "feedback.ok" in _broken(lambda p: p["feedback"].update(ok="blue"))
    assert "serial.usb_ids" in _broken(lambda p: p["serial"].update(usb_ids=["1A86-7523"]))
    assert "hal" in _broken(lambda p: p.update(hal="esp8266"))
    assert "psram" in _broken(lambda p: p.pop("psram"))


def test_unknown_board_lists_known_ones():
    with pytest.raises(profiles.ProfileError) as e:
        profiles.load("no-such-board")
    assert "ai-thinker-esp32-cam" in str(e.value)


def test_firmware_reads_the_same_profile(tmp_path):
    from scanbridge_fw.hal.base import HalError, load_profile
    dst = tmp_path / "board.json"
    dst.write_text(profiles.path_of("ai-thinker-esp32-cam").read_text())
    assert load_profile(str(dst))["camera"]["pins"]["xclk"] == 0
    with pytest.raises(HalError) as e:
        load_profile(str(tmp_path / "missing.json"))
    assert e.value.code == "profile_missing"
    dst.write_text(json.dumps({"id": "x"}))
    with pytest.raises(HalError) as e:
        load_profile(str(dst))
    assert e.value.code == "profile_invalid"


class FakePort:
    def __init__(self, device, vid, pid, serial_number="", description=""):
        self.device, self.vid, self.pid = device, vid, pid
        self.serial_number, self.description, self.location = serial_number, description, ""


def test_discovery_by_usb_ids():
    ports = [FakePort("/dev/ttyUSB1", 0x1A86, 0x7523, "", "USB Serial"),
             FakePort("/dev/ttyACM0", 0x303A, 0x1001, "84:f7:03:aa:bb:cc", "USB JTAG/serial debug unit"),
             FakePort("/dev/ttyUSB0", 0x0403, 0x6001, "FT1", "FTDI"),  # not a scanner adapter
             FakePort("/dev/ttyS0", None, None)]
    found = discovery.find_scanners(ports)
    assert [(f.device, f.vid_pid) for f in found] == [("/dev/ttyACM0", "303a:1001"), ("/dev/ttyUSB1", "1a86:7523")]
    assert found[0].serial_number == "84:f7:03:aa:bb:cc"


def test_ports_command_says_clearly_when_none_found():
    from serial.tools import list_ports
    if discovery.find_scanners(list_ports.comports()):
        pytest.skip("a real scanner adapter is plugged in")
    r = subprocess.run([str(Path(sys.executable).with_name("scanbridge")), "ports"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "No scanner found" in r.stderr and "1a86:7523" in r.stderr and "303a:1001" in r.stderr
