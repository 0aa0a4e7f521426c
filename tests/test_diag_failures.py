"""The known-failure table: each well-known ESP32-camera failure is recognised from what a
device reports and named with its fix; healthy facts raise nothing."""
import pytest

from scanbridge_tools.diagnostics.failures import KNOWN, detect

HEALTHY = {
    "info": {"chip": "esp32", "profile_chip": "esp32", "board": "ai-thinker-esp32-cam", "reset_cause": "pwron",
             "boot_count": 0, "kernels": "viper"},
    "health": {"heap": {"free": 2000000, "idf_largest": 60000}, "psram_bytes": 4194304, "wifi_rssi": -55,
               "frames": 500, "capture_failed": 1, "recent_failures": [], "link": {"sent": 40, "retransmits": 1}},
    "camera": {"ok": True}, "selftest": {"decoder": {"ok": True}},
    "snapshot": {"verdict": "code_readable"}, "link": {"sent": 30, "retransmits": 0, "crc_errors": 0},
    "raw_text": "", "logs": [], "profile": {"psram": {"required": True}},
}


def _with(**changes):
    import copy
    f = copy.deepcopy(HEALTHY)
    for path, value in changes.items():
        cur = f
        keys = path.split("__")
        for k in keys[:-1]:
            cur = cur[k]
        cur[keys[-1]] = value
    return f


def _ids(f):
    return [x["id"] for x in detect(f)]


def test_healthy_scanner_has_no_findings():
    assert detect(HEALTHY) == []


@pytest.mark.parametrize("facts,expected", [
    (_with(camera={"ok": False, "error": "Camera probe failed with error 0x105(ESP_ERR_NOT_FOUND)"}), "camera_not_found"),
    (_with(raw_text="E (532) camera: Detected camera not supported. 0x20004"), "camera_sensor_unsupported"),
    (_with(camera={"ok": False, "error": "camera_init_failed: camera.init returned False"}), "camera_init_failed"),
    (_with(raw_text="\r\nBrownout detector was triggered\r\n\r\nets Jun  8 2016 00:22:57\r\n"), "brownout"),
    (_with(info__boot_count=3), "boot_loop"),
    (_with(health__psram_bytes=0), "no_psram"),
    (_with(raw_text="E (1234) cam_hal: cam_dma_config(301): frame buffer malloc failed"), "no_psram"),
    (_with(info__chip="esp32s3"), "wrong_board_profile"),
    (_with(snapshot={"verdict": "out_of_focus", "sharpness": 0.1}), "lens_focus"),
    (_with(snapshot={"verdict": "too_dark", "mean": 12, "contrast": 3}), "lighting"),
    (_with(selftest={"decoder": {"ok": False, "detail": "got []"}}), "decoder_fault"),
    (_with(info__kernels="bytecode: the viper kernels did not load (memory allocation failed, allocating "
                         "20086 bytes for native code)"), "slow_decoder"),
    (_with(info__accel="block_stats (failed their check: find_rows)"), "accel_refused"),
    (_with(info__accel="off: the last boot's check did not finish; /noaccel written"), "accel_refused"),
    (_with(link__crc_errors=4), "link_noise"),
    (_with(health__heap={"free": 9000}), "low_heap"),
    (_with(health__wifi_rssi=-84), "weak_wifi"),
    (_with(health__capture_failed=100), "dropped_frames"),
])
def test_each_known_failure_is_named_with_its_fix(facts, expected):
    found = detect(facts)
    assert expected in [x["id"] for x in found]
    row = next(x for x in found if x["id"] == expected)
    assert row["fix"] and row["evidence"] and row["title"]


def test_specific_camera_rows_win_over_the_generic_one():
    ids = _ids(_with(camera={"ok": False, "error": "camera_init_failed: 0x105"}))
    assert "camera_not_found" in ids and "camera_init_failed" not in ids


def test_busy_device_retransmits_are_not_called_noise():
    assert "link_noise" not in _ids(_with(link__sent=20, link__retransmits=6))


def test_hand_written_kernels_in_use_or_absent_are_no_finding():
    assert "accel_refused" not in _ids(_with(info__accel="block_stats find_rows"))
    assert "accel_refused" not in _ids(_with(info__accel="off: no module named 'scanbridge_fw.qr.kernels_xtensa'"))


def test_table_ids_are_unique():
    ids = [row[0] for row in KNOWN]
    assert len(ids) == len(set(ids))


def test_every_known_failure_is_documented():
    from pathlib import Path
    doc = (Path(__file__).resolve().parents[1] / "docs" / "fieldkit.md").read_text()
    for fid, *_ in KNOWN:
        assert "`%s`" % fid in doc, "docs/fieldkit.md does not list %s" % fid


# -- a degraded scanner (camera fault, firmware/hal/camera_guard.py) reports its camera state
PROBE = "Camera probe failed with error 0x105(ESP_ERR_NOT_FOUND) (check power and the board pin map)"


def _degraded(code, message, retries=3, recoveries=0, camera_ok=False):
    fault = {"code": code, "message": message, "retries": retries, "retry_in_ms": 4000}
    state = {"fault": fault, "last_fault": "%s: %s" % (code, message), "open": False, "retries": retries,
             "recoveries": recoveries}
    return _with(health__camera=state, camera={"ok": camera_ok, "error": "%s: %s" % (code, message)},
                 hello={"device": "d1", "fault": {"code": code, "message": message}})


def test_camera_not_detected_names_reseat_and_profile():
    found = detect(_degraded("camera_init_failed", PROBE))
    ids = [x["id"] for x in found]
    assert ids[0] == "camera_not_found" and "camera_init_failed" not in ids
    fix = found[0]["fix"]
    assert "Reseat the camera ribbon cable" in fix and "board profile" in fix and "without a reboot" in fix
    assert "0x105" in found[0]["evidence"]


def test_fault_code_alone_from_hello_is_enough():
    # diag.health could not run (e.g. an old bridge asked): the HELLO's fault still names it
    f = _with(hello={"device": "d1", "fault": {"code": "no_camera_driver",
                                               "message": "this MicroPython image has no camera module"}})
    f["camera"] = {}
    ids = _ids(f)
    assert "no_camera_driver" in ids and "camera_init_failed" not in ids


def test_capture_fault_is_its_own_row_not_dropped_frames():
    f = _degraded("camera_capture_failed", "no frame (10 failed captures in a row)")
    f["health"]["capture_failed"] = 300
    ids = _ids(f)
    assert "camera_capture_failing" in ids and "dropped_frames" not in ids and "camera_init_failed" not in ids


def test_recovered_camera_is_reported_as_intermittent_not_as_broken():
    f = _degraded("camera_init_failed", PROBE, recoveries=1)
    f["health"]["camera"]["fault"] = None
    f["health"]["camera"]["open"] = True
    f["camera"] = {"ok": True, "stats": {"mean": 120}}
    f["health"]["recent_failures"] = ["camera fault camera_init_failed: " + PROBE]
    del f["hello"]["fault"]
    found = detect(f)
    assert [x["id"] for x in found] == ["camera_intermittent"]
    assert "0x105" in found[0]["evidence"] and "ribbon" in found[0]["fix"]
