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
