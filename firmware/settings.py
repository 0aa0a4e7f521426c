# Every config key the firmware knows, in one import. Modules that own settings register them with
# config.register() when imported; import this module (not them one by one) before config.load(),
# on the device (start.py) and on the host (provisioning), so both sides accept the same keys.
from scanbridge_fw import config  # noqa: F401
from scanbridge_fw import mqtt_settings  # noqa: F401  WiFi / MQTT keys
from scanbridge_fw import assist  # noqa: F401  host-assist keys
from scanbridge_fw.hal import camera_guard  # noqa: F401  camera retry keys
