# The command registry and dispatcher (firmware/commands.py) with a minimal app stand-in.
from scanbridge_fw import commands, config


class FakeApp:
    def __init__(self):
        self.config = config.defaults()
        self.stopped = None
        self.applied = []

    def stop(self, reason):
        self.stopped = reason

    def info(self):
        return {"device": "x"}

    def status(self):
        return {"frames": 1}

    def apply_config(self, cfg, save=True):
        self.config = cfg
        self.applied.append(save)


async def test_builtins_are_registered():
    for name in ("ping", "help", "info", "status", "config.get", "config.set", "reboot", "repl"):
        assert name in commands.names(), name
    r = await commands.dispatch(FakeApp(), {"id": 9, "cmd": "help"})
    assert r["ok"] and ["ping", "answer at once"] in r["result"]


async def test_register_sync_and_async_commands():
    def echo(app, args):
        return args

    async def later(app, args):
        return {"n": args["n"] + 1}
    commands.register("test.echo", echo, "echo")
    commands.register("test.later", later, "async")
    app = FakeApp()
    r = await commands.dispatch(app, {"id": 1, "cmd": "test.echo", "args": {"a": 1}})
    assert r == {"id": 1, "ok": True, "result": {"a": 1}}
    r = await commands.dispatch(app, {"id": 2, "cmd": "test.later", "args": {"n": 1}})
    assert r["result"] == {"n": 2}


async def test_errors_carry_reason_codes():
    def refuse(app, args):
        raise commands.CommandError("busy", "not now")

    def crash(app, args):
        return 1 // 0
    commands.register("test.refuse", refuse)
    commands.register("test.crash", crash)
    app = FakeApp()
    r = await commands.dispatch(app, {"id": 1, "cmd": "test.refuse"})
    assert r["error"] == {"code": "busy", "message": "not now"}
    r = await commands.dispatch(app, {"id": 2, "cmd": "test.crash"})
    assert not r["ok"] and r["error"]["code"] == "command_failed"
    r = await commands.dispatch(app, {"id": 3, "cmd": "nope"})
    assert r["error"]["code"] == "unknown_command"
    r = await commands.dispatch(app, {"id": 4, "cmd": "ping", "args": [1]})
    assert r["error"]["code"] == "bad_args"


async def test_config_get_and_set():
    app = FakeApp()
    r = await commands.dispatch(app, {"id": 1, "cmd": "config.get", "args": {"key": "dedupe_ms"}})
    assert r["result"] == {"dedupe_ms": 3000}
    r = await commands.dispatch(app, {"id": 2, "cmd": "config.get", "args": {"key": "nope"}})
    assert r["error"]["code"] == "config_unknown_key"
    r = await commands.dispatch(app, {"id": 3, "cmd": "config.set", "args": {"values": {"beep": False}, "dry_run": True}})
    assert r["ok"] and app.config["beep"] is False and app.applied == [False]
    r = await commands.dispatch(app, {"id": 4, "cmd": "config.set", "args": {"beep": "loud"}})
    assert r["error"]["code"] == "config_invalid" and app.config["beep"] is False
    r = await commands.dispatch(app, {"id": 5, "cmd": "config.set", "args": {}})
    assert r["error"]["code"] == "bad_args"


async def test_reboot_and_repl_stop_the_app():
    app = FakeApp()
    await commands.dispatch(app, {"id": 1, "cmd": "reboot"})
    assert app.stopped == "reboot"
    await commands.dispatch(app, {"id": 2, "cmd": "repl"})
    assert app.stopped == "repl"
