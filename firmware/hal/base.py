# The board HAL interface: everything the app needs from hardware, and nothing else. A board
# is built from its profile (hardware/boards/<id>.json, deployed as /board.json). Boards:
# esp32cam.Board (AI-Thinker ESP32-CAM), esp32s3.Board (Freenove ESP32-S3-WROOM CAM); the
# virtual scanner on the host has its own (tools/virtual_scanner/board.py).
import json

PROFILE_PATH = "/board.json"


class HalError(Exception):
    """Hardware refused (camera probe, pins). `code` is a stable reason code."""

    def __init__(self, code, message=""):
        super().__init__(code, message)
        self.code = code
        self.message = message


def load_profile(path=PROFILE_PATH):
    """The board profile deployed beside the config, checked for what the HAL reads."""
    try:
        with open(path) as f:
            profile = json.loads(f.read())
    except OSError:
        raise HalError("profile_missing", "%s not found: deploy hardware/boards/<board>.json there" % path)
    except ValueError as e:
        raise HalError("profile_corrupt", "%s: %s" % (path, e))
    for key in ("id", "chip", "camera", "leds", "serial"):
        if key not in profile:
            raise HalError("profile_invalid", "%s: missing %r" % (path, key))
    return profile


class Board:
    """What the app calls. Subclasses override; these defaults are a board with nothing on it."""

    name = "none"
    caps = ()

    def __init__(self, profile=None):
        self.profile = profile or {}
        if profile:
            self.name = profile.get("id", self.name)

    def open_camera(self, frame_size):
        """Start the camera; raises HalError (code camera_init_failed, the driver's message)
        when it will not. Called again to retry after close_camera() (hal/camera_guard.py)."""

    def close_camera(self):
        """Stop the camera so open_camera() can start it afresh."""

    async def capture(self):
        """One grayscale frame as (buffer, width, height), or None when the camera failed.
        The buffer may be reused by the next capture: decode it before asking again."""
        return None

    def serial_port(self):
        """The port the bridge listens on: async read() -> bytes, write(bytes)."""
        raise HalError("no_serial", "this board has no serial port")

    def led(self, name):
        """Light the logical LED `name` ("ok", "err", "busy") and no other; None: all off."""

    def tone(self, hz):
        """Sound the buzzer at hz; 0 = silent."""

    def light(self, on):
        """Illumination for the camera (flash LED) on or off."""

    def unique_id(self):
        return "none"

    def mem_free(self):
        return None

    def safe_boot_requested(self):
        """True when the safe-boot pin is held: main.py then stays at the REPL."""
        return False

    def reset(self):
        pass
