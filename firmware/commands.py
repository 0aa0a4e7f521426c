# Commands the bridge (or a technician's tool) can send to the scanner: a registry of name ->
# function, and the dispatcher that turns a COMMAND into a REPLY. Other modules register more
# (diagnostics, decoder bench) with register(); built-ins are below.
#
# A command function takes (app, args) and returns a JSON-able result, or a coroutine giving
# one. It raises CommandError(code, message) to refuse with a reason.
from scanbridge_fw import config as config_mod
from scanbridge_fw.compat import is_coroutine, ticks_ms


class CommandError(Exception):
    def __init__(self, code, message=""):
        super().__init__(code, message)
        self.code = code
        self.message = message


_REGISTRY = {}


def register(name, fn, help=""):
    """Add or replace the command `name`."""
    _REGISTRY[name] = (fn, help)


def names():
    return sorted(_REGISTRY)


async def dispatch(app, data):
    """COMMAND data {id, cmd, args} -> REPLY data {id, ok, result | error{code, message}}."""
    cid = data.get("id")
    name = data.get("cmd")
    args = data.get("args") or {}
    entry = _REGISTRY.get(name)
    if entry is None:
        return _error(cid, "unknown_command", "no command %r; try 'help'" % (name,))
    if not isinstance(args, dict):
        return _error(cid, "bad_args", "args must be an object")
    try:
        result = entry[0](app, args)
        if is_coroutine(result):
            result = await result
        return {"id": cid, "ok": True, "result": result}
    except CommandError as e:
        return _error(cid, e.code, e.message)
    except config_mod.ConfigError as e:
        return _error(cid, e.code, e.message)
    except Exception as e:  # a broken command must answer, not kill the link task
        return _error(cid, "command_failed", "%s: %r" % (name, e))


def _error(cid, code, message):
    return {"id": cid, "ok": False, "error": {"code": code, "message": message}}


# ---------------------------------------------------------------- built-ins


def _ping(app, args):
    return {"pong": True, "ticks_ms": ticks_ms()}


def _help(app, args):
    return [[n, _REGISTRY[n][1]] for n in names()]


def _info(app, args):
    return app.info()


def _status(app, args):
    return app.status()


def _config_get(app, args):
    key = args.get("key")
    cfg = config_mod.public(app.config)
    if key is None:
        return cfg
    if key not in cfg:
        raise CommandError("config_unknown_key", "%s: no such setting" % key)
    return {key: cfg[key]}


def _config_set(app, args):
    """args: {key: value, ...}; all checked before any is written; saved atomically."""
    values = args.get("values")
    if values is None:
        values = {}
        for key in args:
            if key != "dry_run":
                values[key] = args[key]
    if not isinstance(values, dict) or not values:
        raise CommandError("bad_args", "give settings as {key: value}")
    new = dict(app.config)
    for key in values:
        new[key] = config_mod.check(key, values[key])
    app.apply_config(new, save=not args.get("dry_run", False))
    return {"saved": not args.get("dry_run", False), "changed": sorted(values)}


def _reboot(app, args):
    app.stop("reboot")
    return {"rebooting": True}


def _repl(app, args):
    # Leaves the app after the reply is out; main.py returns to the REPL (Ctrl-C works as well).
    app.stop("repl")
    return {"leaving": "repl"}


register("ping", _ping, "answer at once")
register("help", _help, "list commands")
register("info", _info, "device id, firmware, board, capabilities")
register("status", _status, "counters, heap, link state")
register("config.get", _config_get, "read settings (args: key)")
register("config.set", _config_set, "change settings (args: {key: value})")
register("reboot", _reboot, "restart the scanner")
register("repl", _repl, "leave the app for the MicroPython REPL")


def _bench(app, args):
    from scanbridge_fw.qr import bench  # imported on demand: only technicians run it
    return bench.command(app, args)


register("bench", _bench, "decode live camera frames, report frames per second (args: frames)")
