# Puts the scanner together on the device: config, board profile and HAL, camera, decoder,
# link, app; then runs it. Called by /main.py. The boot guard decides first whether to run.
import asyncio
import os

from scanbridge_fw import bootguard
from scanbridge_fw import assist
from scanbridge_fw import settings  # noqa: F401  registers every config key before load()
from scanbridge_fw import config as config_mod
from scanbridge_fw.app import App, hello_for
from scanbridge_fw.compat import ticks_ms
from scanbridge_fw.hal.base import HalError, load_profile
from scanbridge_fw.hal.camera_guard import CameraGuard

_HALS = {"esp32cam": "scanbridge_fw.hal.esp32cam", "esp32s3": "scanbridge_fw.hal.esp32s3"}


def make_board(profile):
    name = _HALS.get(profile.get("hal", ""))
    if name is None:
        raise ValueError("board profile names hal %r; known: %s" % (profile.get("hal"), ", ".join(_HALS)))
    mod = __import__(name, None, None, ["Board"])
    return mod.Board(profile)


def make_link(board, cfg, hello):
    if cfg["link"] == "mqtt":
        from scanbridge_fw import mqtt_link  # pyright: ignore[reportAttributeAccessIssue]
        return mqtt_link.MqttLink(board, cfg, hello, session_id())
    from scanbridge_fw.serial_link import SerialLink
    return SerialLink(board.serial_port(), hello, session_id(), queue_max=cfg["serial_queue"])


def open_camera(board, cfg):
    """The camera behind its guard, opened now (before WiFi: hardware/power.md). A camera that
    will not open never escapes as an exception: the app comes up degraded, says why in HELLO
    and STATUS, shows the fault pattern, and retries with backoff (hal/camera_guard.py)."""
    camera = CameraGuard(board, cfg)
    if not camera.open():
        print("scanbridge: camera fault, retrying:", camera.last_fault)
    return camera


def session_id():
    """A random 31-bit number per boot (the ESP32's hardware RNG behind os.urandom)."""
    try:
        b = os.urandom(4)
        return (b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3]) & 0x7FFFFFFF
    except (AttributeError, OSError):  # ports without os.urandom
        pass
    try:
        import random
        return random.getrandbits(31) ^ ticks_ms()
    except ImportError:
        return ticks_ms()


def board_or_fallback():
    """The board of /board.json, or, when that file is missing, corrupt or names a HAL we do not
    have, a bare board that still links (hal.esp32.NoProfileBoard): the fault then reaches the
    bridge in HELLO/STATUS instead of the scanner going silent."""
    try:
        return make_board(load_profile())
    except (HalError, ValueError, ImportError) as e:
        if not isinstance(e, HalError):
            e = HalError("profile_invalid", str(e))
        print("scanbridge: board profile unusable, running without it:", e.code, e.message)
        from scanbridge_fw.hal.esp32 import NoProfileBoard  # pyright: ignore[reportAttributeAccessIssue]
        return NoProfileBoard(e)


def main():
    board = board_or_fallback()
    what, why = bootguard.decide(pin_held=board.safe_boot_requested())
    if what != "app":
        print("scanbridge: app skipped:", why)
        return
    config_error = None
    try:
        cfg = config_mod.load()
    except config_mod.ConfigError as e:  # run on defaults, report the broken file in STATUS
        cfg = config_mod.defaults()
        config_error = str(e)
    camera = open_camera(board, cfg)
    # the camera loop's decoder: one binarisation pass per frame, capped work (docs/decoder.md)
    from scanbridge_fw.qr import scan as decode  # pyright: ignore[reportAttributeAccessIssue]
    link = make_link(board, cfg, hello_for(board, cfg, fault=camera.fault))
    assisted = assist.Assisted(decode, board, cfg)  # host-assist fallback when config says so
    app = App(board, link, assisted, cfg, on_healthy=bootguard.healthy, camera=camera)
    assisted.attach(app)
    app.last_error = config_error
    reason = asyncio.run(app.run())
    if reason == "reboot":
        board.reset()
    print("scanbridge: app left for the REPL (%s)" % reason)
