"""Links between the bridge and its scanners: serial (USB cable) and MQTT (WiFi).

Every link turns wire messages into ScanEvents for a ScanService, sends the verdict back as a
RESULT, and announces the device with service.attach_device() so later verdicts reach it."""
