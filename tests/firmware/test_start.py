# The device entry's wiring (firmware/start.py) that can run off the device.
from scanbridge_fw import start


def test_unknown_hal_is_named():
    try:
        start.make_board({"hal": "esp8266"})
        assert False, "expected ValueError"
    except ValueError as e:
        assert "esp8266" in str(e) and "esp32cam" in str(e)


def test_session_ids_are_31_bit_and_vary():
    ids = [start.session_id() for _ in range(4)]
    for i in ids:
        assert 0 <= i < 2 ** 31
    assert len(set(ids)) > 1


def test_a_camera_that_will_not_open_does_not_escape_from_start():
    from scanbridge_fw import config
    from scanbridge_fw.app import hello_for
    from scanbridge_fw.hal.base import Board, HalError

    class NoCamera(Board):
        name = "ai-thinker-esp32-cam"

        def open_camera(self, frame_size):
            raise HalError("camera_init_failed", "Camera probe failed with error 0x105(ESP_ERR_NOT_FOUND)")
    board = NoCamera()
    cfg = config.defaults()
    camera = start.open_camera(board, cfg)  # before: the HalError escaped main() and the boot guard counted a crash
    assert camera.fault["code"] == "camera_init_failed" and not camera.is_open and camera.tried
    hello = hello_for(board, cfg, fault=camera.fault)
    assert hello["fault"] == {"code": "camera_init_failed",
                              "message": "Camera probe failed with error 0x105(ESP_ERR_NOT_FOUND)"}
    assert "fault" not in hello_for(board, cfg)

