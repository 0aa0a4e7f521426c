"""Links between the bridge and its scanners: USB serial and MQTT (one module each)."""
