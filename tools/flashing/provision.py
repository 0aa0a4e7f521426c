"""Provision a scanner: its settings (/config.json) and board profile (/board.json), written
atomically on the device and checked there with the firmware's own config code.

Secrets (WiFi and MQTT passwords) come from getpass prompts, a JSON secrets file or the
environment (SCANBRIDGE_WIFI_PASSWORD, SCANBRIDGE_MQTT_PASSWORD); they are never printed:
every summary goes through the firmware's config.public(), which masks them."""
from __future__ import annotations

import hashlib
import json
import os

from scanbridge_fw import config as config_mod
from scanbridge_fw import settings as _fw_settings  # noqa: F401  registers every key the firmware knows
from scanbridge_tools.flashing import boards
from scanbridge_tools.flashing.device import Device
from scanbridge_tools.flashing.errors import FlashError

CONFIG_PATH = config_mod.PATH
BOARD_PATH = "/board.json"


def settings_from(device_id=None, site=None, link=None, board=None, wifi=None, broker=None,
                  mqtt_user=None, mqtt_password=None, mqtt_tls=None, extra=None) -> dict:
    """The settings these options ask for (only the ones given). wifi: [{"ssid", "password"}];
    broker: "host" or "host:port"."""
    s = {}
    if device_id is not None:
        s["device_name"] = device_id
        s["mqtt_device"] = device_id
    if site is not None:
        s["mqtt_site"] = site
    if link is not None:
        s["link"] = link
    if board is not None:
        boards.get(board)  # unknown_board with the list of known ones
        s["board"] = board
    if wifi is not None:
        s["wifi"] = wifi
    if broker is not None:
        host, _, port = broker.rpartition(":") if ":" in broker else (broker, "", "")
        s["mqtt_host"] = host
        if port:
            try:
                s["mqtt_port"] = int(port)
            except ValueError:
                raise FlashError("bad_option", "broker port %r is not a number" % port)
    if mqtt_user is not None:
        s["mqtt_user"] = mqtt_user
    if mqtt_password is not None:
        s["mqtt_password"] = mqtt_password
    if mqtt_tls is not None:
        s["mqtt_tls"] = mqtt_tls
    s.update(extra or {})
    return s


def check_settings(cfg: dict) -> dict:
    """Validate with the firmware's schema (the same code the device runs)."""
    try:
        cfg = config_mod.validate(cfg)
    except config_mod.ConfigError as e:
        raise FlashError(e.code, e.message, "fix the option and run provision again")
    if cfg["link"] == "mqtt":
        if not cfg["mqtt_host"]:
            raise FlashError("config_invalid", "link mqtt needs a broker (--broker HOST[:PORT])")
        if not cfg["wifi"]:
            raise FlashError("config_invalid", "link mqtt needs at least one WiFi network (--wifi SSID)")
    for net in cfg["wifi"]:
        if not isinstance(net, dict) or not net.get("ssid"):
            raise FlashError("config_invalid", "each WiFi network needs an ssid")
    return cfg


def read_device_config(dev: Device) -> tuple[dict | None, str | None]:
    """(config, problem): the config on the device, or None with why it could not be used."""
    if not dev.exists(CONFIG_PATH):
        if dev.exists(CONFIG_PATH + ".tmp"):
            return None, "config_half_written: only %s.tmp exists (a write was cut)" % CONFIG_PATH
        return None, None
    raw = dev.read_file(CONFIG_PATH)
    try:
        data = json.loads(raw)
    except ValueError as e:
        return None, "config_corrupt: %s is not valid JSON (%s); likely a half-written file" % (CONFIG_PATH, e)
    try:
        return config_mod.validate(data), None
    except config_mod.ConfigError as e:
        return None, "%s: %s" % (e.code, e.message)


def provision(port: str, settings: dict, replace: bool = False, timeout_s: float = 10.0,
              device: Device | None = None) -> dict:
    """Merge `settings` into the device's config (or replace it), validate, write atomically,
    write the board profile, read both back and check them. Returns a masked summary."""
    own = device is None
    dev = device or Device(port, timeout_s=timeout_s).open()
    try:
        current, problem = read_device_config(dev)
        base = {} if (replace or current is None) else dict(current)
        base.update(settings)
        cfg = check_settings(base)
        profile = boards.get(cfg["board"])
        unique_id = dev.unique_id()
        _write_json_atomic(dev, BOARD_PATH, profile)
        _write_json_atomic(dev, CONFIG_PATH, cfg)
        back, problem_after = read_device_config(dev)
        if back != cfg:
            raise FlashError("verify_failed", "the config read back differs (%s)" % (problem_after or "content"),
                             "provision again; the previous config file was replaced only if complete")
        checked = _check_on_device(dev)
        return {"port": port, "unique_id": unique_id, "config": config_mod.public(cfg),
                "board": profile["id"], "repaired": problem, "device_check": checked}
    finally:
        if own:
            dev.close()


def _write_json_atomic(dev: Device, path: str, data: dict):
    raw = json.dumps(data, sort_keys=True).encode()
    tmp = path + ".tmp"
    dev.write_file(tmp, raw)
    got = dev.sha256([tmp])[tmp]
    if got != hashlib.sha256(raw).hexdigest():
        dev.exec("import os\nos.remove(%r)" % tmp)
        raise FlashError("verify_failed", "%s arrived damaged; the old file is unchanged" % path, "provision again")
    # Same replace as the firmware's config.save: rename over the old file (LittleFS, POSIX);
    # FAT refuses, so remove first (config.load then falls back to the .tmp file).
    dev.exec("import os\ntry:\n os.rename(%r,%r)\nexcept OSError:\n os.remove(%r)\n os.rename(%r,%r)"
             % (tmp, path, path, tmp, path))


def _check_on_device(dev: Device) -> str:
    """Load the config with the firmware on the device, when the app is installed."""
    return dev.eval_json(
        "import json,sys\nif '/lib' not in sys.path: sys.path.append('/lib')\n"
        "try:\n from scanbridge_fw import config\nexcept ImportError:\n print(json.dumps('no_app'))\n"
        "else:\n from scanbridge_fw import settings\n"
        " try:\n  config.load()\n  print(json.dumps('ok'))\n except Exception as e:\n  print(json.dumps('error: %s' % e))")


def secrets_from(path: str | None = None, env=os.environ) -> dict:
    """{"wifi": {ssid: password}, "mqtt_password": str} from a JSON file and/or the environment."""
    out = {"wifi": {}, "mqtt_password": None}
    if path:
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            raise FlashError("bad_secrets_file", "%s: %s" % (path, e))
        for net in data.get("wifi", []):
            out["wifi"][net["ssid"]] = net.get("password", "")
        out["mqtt_password"] = data.get("mqtt_password")
    if env.get("SCANBRIDGE_MQTT_PASSWORD") is not None:
        out["mqtt_password"] = env["SCANBRIDGE_MQTT_PASSWORD"]
    return out
