# The scanner's settings: a JSON file on flash (/config.json), defaults for every key, validation
# with a clear reason, and an atomic write (tmp file + rename) so a power cut never leaves half
# a file. Other modules add their own keys with register() (e.g. WiFi/MQTT settings).
import json
import os

PATH = "/config.json"


class ConfigError(Exception):
    """A setting was refused. `code` is a stable reason code, `message` names the key."""

    def __init__(self, code, message):
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self):
        return self.code + ": " + self.message


# key -> (default, type name, low, high, choices, secret)
_SCHEMA = {}


def register(key, default, kind, low=None, high=None, choices=None, secret=False):
    """Declare a setting. kind: "int", "bool", "str", "list". Secret values are never reported."""
    _SCHEMA[key] = (default, kind, low, high, choices, secret)


register("board", "ai-thinker-esp32-cam", "str", 1, 64)
register("device_name", "", "str", 0, 32)
register("link", "serial", "str", choices=("serial", "mqtt"))
register("dedupe_ms", 3000, "int", 0, 600000)  # same code suppressed for this long
register("result_timeout_ms", 3000, "int", 100, 60000)  # then "no answer" feedback
register("status_interval_ms", 30000, "int", 1000, 3600000)
register("frame_interval_ms", 0, "int", 0, 10000)  # pause between frames (power/heat)
register("frame_size", "QVGA", "str", choices=("QQVGA", "QVGA", "CIF", "VGA"))
register("beep", True, "bool")
register("light", False, "bool")  # flash LED as illumination while scanning
register("healthy_after_ms", 20000, "int", 1000, 600000)  # boot counts as good after this
register("serial_queue", 16, "int", 2, 64)


def defaults():
    d = {}
    for key in _SCHEMA:
        d[key] = _SCHEMA[key][0]
    return d


def schema_keys():
    return sorted(_SCHEMA)


def check(key, value):
    """Return the value if valid for `key`, else raise ConfigError naming key and rule."""
    if key not in _SCHEMA:
        raise ConfigError("config_unknown_key", "%s: no such setting" % key)
    default, kind, low, high, choices, secret = _SCHEMA[key]
    shown = "***" if secret else repr(value)
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError("config_invalid", "%s: must be an integer, got %s" % (key, shown))
        if (low is not None and value < low) or (high is not None and value > high):
            raise ConfigError("config_invalid", "%s: must be between %s and %s, got %s" % (key, low, high, shown))
    elif kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError("config_invalid", "%s: must be true or false, got %s" % (key, shown))
    elif kind == "str":
        if not isinstance(value, str):
            raise ConfigError("config_invalid", "%s: must be text, got %s" % (key, shown))
        if (low is not None and len(value) < low) or (high is not None and len(value) > high):
            raise ConfigError("config_invalid", "%s: length must be %s..%s" % (key, low, high))
    elif kind == "list":
        if not isinstance(value, list):
            raise ConfigError("config_invalid", "%s: must be a list, got %s" % (key, shown))
    if choices is not None and value not in choices:
        raise ConfigError("config_invalid", "%s: must be one of %s, got %s" % (key, ", ".join(choices), shown))
    return value


def validate(data):
    """A full config from a dict: defaults filled in, every key checked."""
    if not isinstance(data, dict):
        raise ConfigError("config_invalid", "the config must be a JSON object")
    cfg = defaults()
    for key in data:
        cfg[key] = check(key, data[key])
    return cfg


def load(path=PATH):
    """The config on flash, or the defaults when there is none. A broken file raises
    ConfigError (the app then runs on defaults and reports it) rather than being ignored."""
    raw = _read(path)
    if raw is None:
        raw = _read(path + ".tmp")  # power cut between remove and rename (FAT): the new file
    if raw is None:
        return defaults()
    try:
        data = json.loads(raw)
    except ValueError as e:
        raise ConfigError("config_corrupt", "%s is not valid JSON: %s" % (path, e))
    return validate(data)


def save(cfg, path=PATH):
    """Validate and write atomically: the old file stays until the new one is complete."""
    cfg = validate(cfg)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(cfg))
    try:
        os.rename(tmp, path)  # LittleFS and POSIX replace the target in one step
    except OSError:
        os.remove(path)  # FAT refuses to rename onto an existing file
        os.rename(tmp, path)
    return cfg


def public(cfg):
    """The config with secret values masked, for replies and STATUS."""
    out = {}
    for key in cfg:
        spec = _SCHEMA.get(key)
        out[key] = "***" if spec is not None and spec[5] and cfg[key] else cfg[key]
    return out


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None
