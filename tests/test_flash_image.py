"""`scanbridge flash image`: everything around esptool. The ROM bootloader is the only thing
that cannot exist here, so `detect` (the bootloader's answer) and, where noted, `run` are
replaced; the argv we build is parsed by the real esptool CLI."""
import struct
from pathlib import Path

import pytest

from scanbridge_hw import profiles
from scanbridge_tools.flashing import image
from scanbridge_tools.flashing.errors import FlashError


def _image(path: Path, chip_id: int) -> Path:
    head = bytearray(64)
    head[0] = image.IMAGE_MAGIC
    struct.pack_into("<H", head, 12, chip_id)
    path.write_bytes(bytes(head) + b"\xff" * 4096)
    return path


def _fake_detect(chip, mac="24:0a:c4:12:34:56"):
    return lambda port: {"chip": chip, "label": image.CHIPS[chip]["label"], "mac": mac, "flash_size": "4MB"}


def test_offsets_per_chip_match_the_board_profiles():
    assert image.CHIPS["esp32"]["offset"] == 0x1000
    assert image.CHIPS["esp32s3"]["offset"] == 0x0
    for p in profiles.load_all():
        assert int(p["flash"]["micropython_offset"], 16) == image.CHIPS[image.chip_key(p["chip"])]["offset"], p["id"]


def test_chip_names_from_esptool_map_to_keys():
    assert image.chip_key("ESP32") == "esp32"
    assert image.chip_key("ESP32-S3") == "esp32s3"
    with pytest.raises(FlashError) as e:
        image.chip_key("ESP8266")
    assert e.value.code == "unsupported_chip"


@pytest.mark.parametrize("chip,chip_id,offset", [("esp32", 0, "0x1000"), ("esp32s3", 9, "0x0")])
def test_write_uses_hyphenated_v5_commands_and_the_chip_offset(tmp_path, chip, chip_id, offset):
    img = _image(tmp_path / "mp.bin", chip_id)
    calls = []
    r = image.flash_image("/dev/ttyUSB0", img, erase=True, verify=True, detect_fn=_fake_detect(chip),
                          run_fn=calls.append)
    assert [c[6] for c in calls] == ["erase-flash", "write-flash", "verify-flash"]
    assert all(c[:2] == ["--chip", chip] for c in calls)
    assert calls[1][-2:] == [offset, str(img)] and calls[2][-2:] == [offset, str(img)]
    assert not any("_" in c[6] for c in calls)  # no deprecated underscore spellings
    assert r["offset"] == offset and r["mac"] == "24:0a:c4:12:34:56"


def test_no_erase_no_verify_runs_only_write(tmp_path):
    calls = []
    image.flash_image("/dev/ttyUSB0", _image(tmp_path / "mp.bin", 0), verify=False,
                      detect_fn=_fake_detect("esp32"), run_fn=calls.append)
    assert [c[6] for c in calls] == ["write-flash"]


def test_image_for_another_chip_is_refused_before_writing(tmp_path):
    calls = []
    with pytest.raises(FlashError) as e:
        image.flash_image("/dev/ttyUSB0", _image(tmp_path / "s3.bin", 9), detect_fn=_fake_detect("esp32"),
                          run_fn=calls.append)
    assert e.value.code == "image_chip_mismatch" and calls == []


def test_board_profile_for_another_chip_is_refused(tmp_path):
    calls = []
    with pytest.raises(FlashError) as e:
        image.flash_image("/dev/ttyUSB0", _image(tmp_path / "mp.bin", 9), board_chip="esp32",
                          detect_fn=_fake_detect("esp32s3"), run_fn=calls.append)
    assert e.value.code == "wrong_board_profile" and calls == []


def test_not_an_image_and_missing_image(tmp_path):
    bad = tmp_path / "firmware.uf2"
    bad.write_bytes(b"UF2\n" + bytes(100))
    with pytest.raises(FlashError) as e:
        image.image_chip(bad)
    assert e.value.code == "image_invalid"
    with pytest.raises(FlashError) as e:
        image.image_chip(tmp_path / "nope.bin")
    assert e.value.code == "image_missing"


def test_wrong_port_is_named():
    with pytest.raises(FlashError) as e:
        image.detect("/dev/ttyNOPE99")
    assert e.value.code == "port_not_found"


def test_silent_tty_is_no_bootloader_with_the_boot_button_hint():
    """A real esptool connect attempt on a pty with nothing behind it (no ROM bootloader)."""
    import os
    master, slave = os.openpty()
    try:
        with pytest.raises(FlashError) as e:
            image.detect_with_attempts(os.ttyname(slave), attempts=1)
        assert e.value.code == "no_bootloader" and "IO0" in e.value.fix
    finally:
        os.close(master)
        os.close(slave)


def test_real_esptool_parses_our_arguments(tmp_path):
    """Our argv goes through esptool's own CLI up to opening the port, which does not exist:
    a usage error would be esptool_failed with an exit code, not a port failure."""
    img = _image(tmp_path / "mp.bin", 0)
    for argv in image.esptool_commands("esp32", "/dev/ttyNOPE98", img, erase=True, verify=True):
        with pytest.raises(FlashError) as e:
            image.run_esptool(argv)
        assert "exited with" not in e.value.message, e.value.message
        assert e.value.code in ("esptool_failed", "device_timeout")
        assert "ttyNOPE98" in e.value.message


def test_cli_refuses_a_wrong_file_and_an_unknown_board(tmp_path):
    import json
    import subprocess
    import sys
    exe = str(Path(sys.executable).with_name("scanbridge"))
    bad = tmp_path / "firmware.uf2"
    bad.write_bytes(b"UF2\n" + bytes(100))
    p = subprocess.run([exe, "flash", "image", "-p", "/dev/ttyUSB9", str(bad), "--json"], capture_output=True, text=True)
    assert p.returncode == 1 and json.loads(p.stdout)["error"]["code"] == "image_invalid"
    good = _image(tmp_path / "mp.bin", 0)
    p = subprocess.run([exe, "flash", "image", "-p", "/dev/ttyUSB9", str(good), "--board", "esp8266-toaster"],
                       capture_output=True, text=True)
    assert p.returncode == 1 and "unknown_board" in p.stderr and "ai-thinker-esp32-cam" in p.stderr
