# The camera behind one small interface, whichever driver the MicroPython image carries:
# cnadler86's `camera` module (maintained; capture() gives a zero-copy buffer) first, then the
# older lemariva `camera` module (camera.init/capture; a new bytes object per frame).
from scanbridge_fw.hal.base import HalError

_SIZES = {"QQVGA": (160, 120), "QVGA": (320, 240), "CIF": (400, 296), "VGA": (640, 480)}


def open_camera(cam, frame_size="QVGA"):
    """cam: the profile's "camera" object. Returns an object with async capture()."""
    try:
        import camera  # pyright: ignore[reportMissingImports]
    except ImportError:
        raise HalError("no_camera_driver", "this MicroPython image has no camera module; flash a camera build")
    if hasattr(camera, "Camera"):
        return _Cnadler(camera, cam, frame_size)
    if hasattr(camera, "init"):
        return _Lemariva(camera, cam, frame_size)
    raise HalError("no_camera_driver", "unknown camera module API")


class _Cnadler:
    def __init__(self, mod, cam, frame_size):
        self.mod = mod
        p = cam["pins"]
        try:
            self.cam = mod.Camera(
                data_pins=p["data"], pclk_pin=p["pclk"], vsync_pin=p["vsync"], href_pin=p["href"],
                sda_pin=p["sda"], scl_pin=p["scl"], xclk_pin=p["xclk"],
                xclk_freq=cam.get("xclk_freq", 20000000), powerdown_pin=p.get("pwdn", -1),
                reset_pin=p.get("reset", -1), pixel_format=mod.PixelFormat.GRAYSCALE,
                frame_size=getattr(mod.FrameSize, frame_size), fb_count=cam.get("fb_count", 1))
        except Exception as e:  # the driver raises OSError/RuntimeError with an esp_err code
            raise HalError("camera_init_failed", "%s (check power and the board pin map)" % (e,))
        self.width, self.height = _SIZES[frame_size]
        for attr in ("pixel_width", "get_pixel_width"):
            v = getattr(self.cam, attr, None)
            if v is not None:
                self.width = v() if callable(v) else v
                break
        for attr in ("pixel_height", "get_pixel_height"):
            v = getattr(self.cam, attr, None)
            if v is not None:
                self.height = v() if callable(v) else v
                break

        # host assist: the sensor's own JPEG (its encoder, no CPU) by switching format for one shot
        self.jpeg = hasattr(self.cam, "reconfigure") and hasattr(mod.PixelFormat, "JPEG")

    async def capture(self):
        buf = self.cam.capture()  # zero-copy; valid until the next capture
        if buf is None:
            return None
        return buf, self.width, self.height

    async def capture_jpeg(self):
        """One JPEG from the sensor (bytes, copied), then back to grayscale for decoding."""
        if not self.jpeg:
            return None
        fmt = self.mod.PixelFormat
        self.cam.reconfigure(pixel_format=fmt.JPEG)
        try:
            buf = self.cam.capture()
            if buf is None:
                buf = self.cam.capture()  # the first frame after a switch may be dropped
            return bytes(buf) if buf else None
        finally:
            self.cam.reconfigure(pixel_format=fmt.GRAYSCALE)

    def close(self):
        deinit = getattr(self.cam, "deinit", None)  # frees the frame buffers for a reopen
        if deinit is not None:
            deinit()


class _Lemariva:
    def __init__(self, mod, cam, frame_size):
        self.mod = mod
        ok = mod.init(0, format=mod.GRAYSCALE, framesize=getattr(mod, "FRAME_" + frame_size),
                      fb_location=getattr(mod, "PSRAM", 0))
        if not ok:
            raise HalError("camera_init_failed", "camera.init returned False (power cycle the board)")
        self.width, self.height = _SIZES[frame_size]
        self.jpeg = False  # switching format needs a deinit/init with this driver: host assist sends PGM

    async def capture(self):
        buf = self.mod.capture()
        if not buf:
            return None
        return buf, self.width, self.height

    async def capture_jpeg(self):
        return None  # see self.jpeg

    def close(self):
        deinit = getattr(self.mod, "deinit", None)
        if deinit is not None:
            deinit()
