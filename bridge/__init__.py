"""scanbridge: the counter-PC bridge for the ESP32 camera payment scanner."""
__version__ = "0.1.0"
