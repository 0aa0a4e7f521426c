# Freenove ESP32-S3-WROOM CAM (ESP32-S3-EYE camera pin map): OV2640, 8 MB octal PSRAM, the REPL
# on native USB CDC (303a:1001) — so the serial port is the REPL's stdio like on the ESP32-CAM,
# just without a USB-UART chip and with no baud rate. LEDs and buzzer from the profile.
from scanbridge_fw.hal.esp32 import Esp32Board


class Board(Esp32Board):
    name = "freenove-esp32-s3-wroom-cam"
    caps = ("scan", "status", "commands", "usb_cdc")
