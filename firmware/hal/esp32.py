# Pieces every ESP32-family board shares: pins from the profile, LEDs, a PWM buzzer, the REPL's
# stdio as the serial port, and the camera through whichever driver the firmware image has.
import gc
import sys

import machine

from scanbridge_fw.compat import sleep_ms
from scanbridge_fw.hal.base import Board as _Base
from scanbridge_fw.hal.base import HalError
from scanbridge_fw.hal.camera import open_camera


class StdioPort:
    """UART0 (ESP32-CAM, shared with the REPL) or USB CDC (ESP32-S3): the REPL's own stream.

    Ctrl-C stays enabled on purpose: the bridge never sends bytes below 0x20 except newline
    (wire frames are printable ASCII), so only mpremote's Ctrl-C reaches the interrupt handler,
    and it must, to take the device over."""

    def __init__(self):
        import select
        self._in = getattr(sys.stdin, "buffer", sys.stdin)
        self._out = getattr(sys.stdout, "buffer", sys.stdout)  # raw: no \n -> \r\n cooking
        self._poll = select.poll()
        self._poll.register(sys.stdin, select.POLLIN)
        self._buf = bytearray(256)

    async def read(self):
        buf = self._buf
        while True:
            n = 0
            while n < len(buf) and self._poll.poll(0):
                c = self._in.read(1)
                if not c:
                    break
                b = c[0]
                buf[n] = b if isinstance(b, int) else ord(b)
                n += 1
            if n:
                return bytes(buf[:n])
            await sleep_ms(5)

    def write(self, data):
        self._out.write(data)


class Esp32Board(_Base):
    caps = ("scan", "status", "commands")

    def __init__(self, profile):
        super().__init__(profile)
        self._leds = {}  # logical name -> (Pin, active_low)
        for logical, phys in profile.get("feedback", {}).items():
            spec = profile["leds"].get(phys)
            if spec is not None and spec.get("pin", -1) >= 0:
                pin = machine.Pin(spec["pin"], machine.Pin.OUT)
                self._leds[logical] = (pin, spec.get("active_low", False))
        for pin, low in self._leds.values():
            pin.value(1 if low else 0)
        self._buzzer = None
        bz = profile.get("buzzer")
        if bz and bz.get("pin", -1) >= 0:
            self._buzzer = machine.PWM(machine.Pin(bz["pin"]), freq=2000, duty_u16=0)
        self._light = None
        lt = profile["leds"].get(profile.get("feedback", {}).get("light", ""), None)
        if lt and lt.get("pin", -1) >= 0:
            self._light = machine.PWM(machine.Pin(lt["pin"]), freq=5000, duty_u16=0)
            self._light_duty = int(65535 * lt.get("duty", 0.05))
        self._camera = None
        self._port = None

    def open_camera(self, frame_size):
        self.close_camera()
        self._camera = open_camera(self.profile["camera"], frame_size)
        return self._camera

    def close_camera(self):
        cam, self._camera = self._camera, None
        if cam is not None:
            cam.close()

    async def capture(self):
        if self._camera is None:
            raise HalError("camera_closed", "open_camera() first")
        return await self._camera.capture()

    def can_capture_jpeg(self):
        return self._camera is not None and bool(getattr(self._camera, "jpeg", False))

    async def capture_jpeg(self):
        if self._camera is None:
            raise HalError("camera_closed", "open_camera() first")
        return await self._camera.capture_jpeg()

    def serial_port(self):
        if self._port is None:
            self._port = StdioPort()
        return self._port

    def led(self, name):
        for logical in self._leds:
            pin, low = self._leds[logical]
            on = logical == name
            pin.value((0 if on else 1) if low else (1 if on else 0))

    def tone(self, hz):
        if self._buzzer is None:
            return
        if hz:
            self._buzzer.freq(hz)
            self._buzzer.duty_u16(32768)
        else:
            self._buzzer.duty_u16(0)

    def light(self, on):
        if self._light is not None:
            self._light.duty_u16(self._light_duty if on else 0)

    def unique_id(self):
        return "".join("%02x" % b for b in machine.unique_id())

    def mem_free(self):
        return gc.mem_free()

    def safe_boot_requested(self):
        sb = self.profile.get("safe_boot")
        if not sb or sb.get("pin", -1) < 0:
            return False
        import time
        pin = machine.Pin(sb["pin"], machine.Pin.IN, machine.Pin.PULL_UP)
        want = 0 if sb.get("active_low", True) else 1
        # Watched for window_ms with the "busy" LED lit, so a person has time to press it
        # after releasing reset (held DURING reset, GPIO0 selects the ROM bootloader instead).
        window = sb.get("window_ms", 0)
        self.led("busy")
        try:
            t0 = time.ticks_ms()
            while True:
                if pin.value() == want:
                    return True
                if time.ticks_diff(time.ticks_ms(), t0) >= window:
                    return False
                time.sleep_ms(20)
        finally:
            self.led(None)

    def reset(self):
        machine.reset()

    def wlan(self):
        """The WiFi station interface, for scanbridge_fw.wifi (link "mqtt")."""
        import network
        return network.WLAN(network.STA_IF)


class NoProfileBoard(Esp32Board):
    """What start.py runs on when /board.json is missing, corrupt or names an unknown HAL: no
    LEDs, buzzer or camera, but the REPL's stdio as the serial link (UART0 or USB on every
    board), so the scanner tells the bridge what is wrong instead of going silent. Its camera
    "fails" with the profile's error, which HELLO/STATUS report like any camera fault."""

    name = "unknown"

    def __init__(self, error):
        super().__init__({"id": "unknown", "chip": "", "camera": {}, "leds": {}, "serial": {}})
        self.error = error

    def open_camera(self, frame_size):
        raise HalError(getattr(self.error, "code", "profile_invalid"),
                       getattr(self.error, "message", "") or str(self.error))
