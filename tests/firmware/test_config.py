# Settings on flash (firmware/config.py): defaults, validation with reasons, atomic save.
import os

from scanbridge_fw import config


def _dir(name):
    try:
        import tempfile
        return tempfile.mkdtemp()
    except ImportError:  # MicroPython: its filesystem root is ours
        path = "/" + name
        try:
            os.mkdir(path)
        except OSError:
            pass
        return path


def _err(fn):
    try:
        fn()
    except config.ConfigError as e:
        return e
    raise AssertionError("expected ConfigError")


def test_missing_file_gives_defaults():
    d = _dir("cfg1")
    cfg = config.load(d + "/config.json")
    assert cfg == config.defaults()
    assert cfg["dedupe_ms"] == 3000 and cfg["link"] == "serial"


def test_save_then_load_roundtrip_and_no_tmp_left():
    d = _dir("cfg2")
    path = d + "/config.json"
    cfg = config.defaults()
    cfg["dedupe_ms"] = 1500
    config.save(cfg, path)
    cfg["beep"] = False
    config.save(cfg, path)  # over an existing file
    got = config.load(path)
    assert got["dedupe_ms"] == 1500 and got["beep"] is False
    assert "config.json.tmp" not in os.listdir(d)


def test_invalid_values_are_refused_with_the_key_named():
    e = _err(lambda: config.check("dedupe_ms", -5))
    assert e.code == "config_invalid" and "dedupe_ms" in e.message
    e = _err(lambda: config.check("dedupe_ms", "3000"))
    assert e.code == "config_invalid"
    e = _err(lambda: config.check("beep", 1))
    assert e.code == "config_invalid" and "beep" in e.message
    e = _err(lambda: config.check("link", "carrier-pigeon"))
    assert "serial" in e.message
    e = _err(lambda: config.check("no_such_key", 1))
    assert e.code == "config_unknown_key"


def test_save_refuses_invalid_and_keeps_the_old_file():
    d = _dir("cfg3")
    path = d + "/config.json"
    config.save(config.defaults(), path)
    bad = config.defaults()
    bad["frame_size"] = "8K"
    _err(lambda: config.save(bad, path))
    assert config.load(path)["frame_size"] == "QVGA"


def test_corrupt_file_is_reported_not_ignored():
    d = _dir("cfg4")
    path = d + "/config.json"
    with open(path, "w") as f:
        f.write("{not json")
    e = _err(lambda: config.load(path))
    assert e.code == "config_corrupt"


def test_half_finished_save_recovers_from_tmp():
    # power cut after remove() and before rename() on FAT: only the .tmp file is there
    d = _dir("cfg5")
    path = d + "/config.json"
    with open(path + ".tmp", "w") as f:
        f.write('{"dedupe_ms": 777}')
    assert config.load(path)["dedupe_ms"] == 777


def test_registered_keys_and_secrets_are_masked():
    config.register("test_secret", "", "str", 0, 64, secret=True)
    try:
        cfg = config.validate({"test_secret": "hunter2"})
        assert config.public(cfg)["test_secret"] == "***"
        e = _err(lambda: config.check("test_secret", 5))
        assert "hunter2" not in e.message and "5" not in e.message
    finally:
        # the schema is process-wide: a test key must not leak into later tests (provisioning
        # writes every registered key, and a device without it would refuse the config)
        config._SCHEMA.pop("test_secret", None)
