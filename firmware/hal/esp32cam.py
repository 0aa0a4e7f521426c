# AI-Thinker ESP32-CAM: OV2640, flash LED GPIO4 (used as illumination and "busy"), red LED GPIO33
# (active-low, "err"), UART0 through a CH340 (ESP32-CAM-MB) or CP2102 shared with the REPL.
# Pins come from hardware/boards/ai-thinker-esp32-cam.json; quirks are in that folder's README.
from scanbridge_fw.hal.esp32 import Esp32Board


class Board(Esp32Board):
    name = "ai-thinker-esp32-cam"

    def open_camera(self, frame_size):
        # Every open, also a retry after a camera fault, starts from a freshly powered sensor.
        self.close_camera()
        self._pulse_pwdn()
        return super().open_camera(frame_size)

    def _pulse_pwdn(self):
        # The OV2640 on this board is powered down through GPIO32; the camera driver raises it,
        # but on a warm reset it can stay low and the probe fails (0x105): pulse it first.
        pwdn = self.profile["camera"]["pins"].get("pwdn", -1)
        if pwdn >= 0:
            import machine
            import time
            p = machine.Pin(pwdn, machine.Pin.OUT)
            p.value(1)
            time.sleep_ms(10)
            p.value(0)
