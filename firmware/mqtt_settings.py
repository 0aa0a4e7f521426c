# The WiFi and MQTT settings in /config.json (registered with config.register so that a config
# carrying them validates even on a build that runs over serial). Imported by start.py before
# the config is loaded; documented in docs/protocol.md ("MQTT link").
from scanbridge_fw import config

SPOOL_DIR = "/spool"  # scans waiting for their RESULT when mqtt_spool is on

config.register("wifi", [], "list", secret=True)  # [{"ssid": .., "password": ..}], tried strongest first
config.register("mqtt_host", "", "str", 0, 128)
config.register("mqtt_port", 0, "int", 0, 65535)  # 0: 1883, or 8883 with TLS
config.register("mqtt_tls", False, "bool")
config.register("mqtt_user", "", "str", 0, 64)  # empty: the device id
config.register("mqtt_password", "", "str", 0, 128, secret=True)
config.register("mqtt_device", "", "str", 0, 64)  # empty: the board's unique id (MAC)
config.register("mqtt_site", "default", "str", 1, 64)
config.register("mqtt_keepalive", 30, "int", 5, 600)
config.register("mqtt_queue", 32, "int", 1, 256)  # scans waiting for a RESULT, at most
config.register("mqtt_result_timeout_ms", 5000, "int", 500, 120000)  # then republish
config.register("mqtt_spool", True, "bool")  # keep waiting scans on flash across a reset
