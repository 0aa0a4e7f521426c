"""`scanbridge flash`: turn a blank ESP32 camera board into a scanner and set it up for a store.

    scanbridge flash boards                         board profiles known to the tool
    scanbridge flash image  -p PORT IMAGE.bin [--board ID] [--erase] [--no-verify]
    scanbridge flash deploy -p PORT [--build DIR] [--force]     (builds first unless --build)
    scanbridge flash rollback -p PORT
    scanbridge flash provision -p PORT --id ID --site SITE --board ID [--link serial|mqtt]
                    [--wifi SSID ...] [--broker HOST[:PORT]] [--mqtt-user U] [--secrets FILE]
    scanbridge flash batch --count N --id-pattern 'scan-{n:03d}' [--image IMG] ... (one board after another)
Secrets are prompted (getpass), or read from --secrets FILE / SCANBRIDGE_*_PASSWORD; never shown."""
from __future__ import annotations

import getpass
import json
import sys
import tempfile
from pathlib import Path

from scanbridge_tools.flashing.errors import FlashError


def add_arguments(parser):
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("boards", help="list board profiles")

    p = sub.add_parser("image", help="write a MicroPython image with esptool")
    _port(p)
    p.add_argument("image", help="MicroPython .bin for the board (camera build)")
    p.add_argument("--board", help="board profile id: refuse if the chip differs")
    p.add_argument("--offset", type=lambda s: int(s, 0), help="override the chip's offset (expert)")
    p.add_argument("--erase", action="store_true", help="erase the whole flash first (config too)")
    p.add_argument("--no-verify", action="store_true", help="skip reading the flash back")
    p.add_argument("--esptool-baud", type=int, default=460800)

    p = sub.add_parser("deploy", help="copy the app (only what changed), verify, switch atomically")
    _port(p)
    p.add_argument("--build", help="a `scanbridge build` folder (default: build now into a temp folder)")
    p.add_argument("--force", action="store_true", help="upload every file even if unchanged")

    p = sub.add_parser("rollback", help="put the previous app back")
    _port(p)

    p = sub.add_parser("provision", help="write device settings and board profile")
    _port(p)
    _provision_options(p)

    p = sub.add_parser("batch", help="many boards in a row with a label line each")
    p.add_argument("-p", "--port", help="the port each board appears on (default: the first scanner found)")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--id-pattern", default="scan-{n:03d}")
    p.add_argument("--start", type=int, default=1)
    p.add_argument("--image", help="also write this MicroPython image first")
    p.add_argument("--erase", action="store_true")
    p.add_argument("--build", help="a `scanbridge build` folder (default: build once now)")
    p.add_argument("--no-wait", action="store_true", help="do not wait for Enter between boards")
    p.add_argument("--timeout", type=float, default=10.0)
    _provision_options(p, with_id=False)
    for q in sub.choices.values():
        q.add_argument("--json", action="store_true", help="print the result as JSON")


def _port(p):
    p.add_argument("-p", "--port", required=True, help="serial port (/dev/ttyUSB0, /dev/scanbridge-*, COM3)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the device")


def _provision_options(p, with_id=True):
    if with_id:
        p.add_argument("--id", dest="device_id", help="device id (label, MQTT client id)")
    p.add_argument("--site", help="store / site name")
    p.add_argument("--board", help="board profile id (see `scanbridge flash boards`)")
    p.add_argument("--link", choices=("serial", "mqtt"))
    p.add_argument("--wifi", action="append", metavar="SSID", help="a WiFi network (repeat); password prompted")
    p.add_argument("--broker", help="MQTT broker HOST[:PORT]")
    p.add_argument("--mqtt-user")
    p.add_argument("--mqtt-tls", action="store_true", default=None)
    p.add_argument("--secrets", help="JSON file: {wifi: [{ssid, password}], mqtt_password}")
    p.add_argument("--replace", action="store_true", help="start from defaults, not the device's config")
    p.add_argument("--no-prompt", action="store_true", help="never prompt; a missing secret is an error")


def _secrets(args) -> tuple[list | None, str | None]:
    """WiFi networks with passwords and the MQTT password, without ever echoing them."""
    from scanbridge_tools.flashing.provision import secrets_from
    import os
    known = secrets_from(args.secrets)
    wifi = None
    ssids = list(args.wifi or [])
    if not ssids and args.secrets and known["wifi"]:
        ssids = list(known["wifi"])
    if ssids:
        wifi = []
        env_pw = os.environ.get("SCANBRIDGE_WIFI_PASSWORD")
        for ssid in ssids:
            pw = known["wifi"].get(ssid, env_pw)
            if pw is None:
                if args.no_prompt or not sys.stdin.isatty():
                    raise FlashError("secret_missing", "no password for WiFi %r" % ssid,
                                     "give it in --secrets FILE or SCANBRIDGE_WIFI_PASSWORD")
                pw = getpass.getpass("WiFi password for %s: " % ssid)
            wifi.append({"ssid": ssid, "password": pw})
    mqtt_pw = known["mqtt_password"]
    if mqtt_pw is None and args.mqtt_user:
        if args.no_prompt or not sys.stdin.isatty():
            raise FlashError("secret_missing", "no MQTT password for user %r" % args.mqtt_user,
                             "give it in --secrets FILE or SCANBRIDGE_MQTT_PASSWORD")
        mqtt_pw = getpass.getpass("MQTT password for %s: " % args.mqtt_user)
    return wifi, mqtt_pw


def _settings(args, device_id):
    from scanbridge_tools.flashing.provision import settings_from
    wifi, mqtt_pw = _secrets(args)
    return settings_from(device_id=device_id, site=args.site, link=args.link, board=args.board, wifi=wifi,
                         broker=args.broker, mqtt_user=args.mqtt_user, mqtt_password=mqtt_pw,
                         mqtt_tls=args.mqtt_tls)


class _Progress:
    """A rich progress bar on stderr for long steps (esptool, upload)."""

    def __init__(self, quiet=False):
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn
        self.console = Console(stderr=True)
        self.bar = Progress(TextColumn("{task.description:<10}"), BarColumn(), DownloadColumn(),
                            console=self.console, transient=True, disable=quiet)
        self.tasks = {}

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        self.bar.__exit__(*exc)

    def __call__(self, stage, done=None, total=None):
        if stage not in self.tasks:
            self.tasks[stage] = self.bar.add_task(stage, total=total)
        self.bar.update(self.tasks[stage], completed=done, total=total)


def _build(args):
    from scanbridge_tools.build import BuildError, build
    if args.build:
        return Path(args.build)
    import atexit
    import shutil
    out = Path(tempfile.mkdtemp(prefix="scanbridge-build-"))
    atexit.register(shutil.rmtree, out, True)  # a throw-away build for this run only
    try:
        build(out)
    except BuildError as e:
        raise FlashError(e.code, e.message)
    return out


def main(args) -> int:
    try:
        result = _run(args)
    except FlashError as e:
        if getattr(args, "json", False):
            print(json.dumps({"ok": False, "error": e.as_dict()}))
        else:
            print("scanbridge flash %s failed: %s" % (args.action, e), file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, indent=1, sort_keys=True))
    else:
        _print(args.action, result)
    return 0 if not (isinstance(result, dict) and result.get("failed")) else 1


def _run(args):
    from scanbridge_tools.flashing import boards
    if args.action == "boards":
        return {"boards": [{"id": b, "name": boards.get(b).get("name", b), "chip": boards.get(b).get("chip")}
                           for b in boards.names()]}
    if args.action == "image":
        from scanbridge_tools.flashing.image import flash_image
        chip = boards.get(args.board)["chip"] if args.board else None
        with _Progress() as prog:
            return flash_image(args.port, Path(args.image), board_chip=chip, offset=args.offset,
                               baud=args.esptool_baud, erase=args.erase, verify=not args.no_verify,
                               step=lambda s: prog(s))
    if args.action == "deploy":
        from scanbridge_tools.flashing.deploy import deploy
        build_dir = _build(args)
        with _Progress() as prog:
            return deploy(args.port, build_dir, timeout_s=args.timeout, force=args.force, progress=prog)
    if args.action == "rollback":
        from scanbridge_tools.flashing.deploy import rollback
        return rollback(args.port, timeout_s=args.timeout)
    if args.action == "provision":
        from scanbridge_tools.flashing.provision import provision
        settings = _settings(args, args.device_id)
        return provision(args.port, settings, replace=args.replace, timeout_s=args.timeout)
    if args.action == "batch":
        return _batch(args)
    raise FlashError("bad_option", "unknown action %r" % args.action)


def _batch(args):
    from scanbridge_tools.flashing.batch import device_ids, mac_from_unique_id, run_batch
    from scanbridge_tools.flashing.deploy import deploy
    from scanbridge_tools.flashing.device import Device
    from scanbridge_tools.flashing.provision import provision
    ids = device_ids(args.id_pattern, args.start, args.count)
    build_dir = _build(args)
    wifi, mqtt_pw = _secrets(args)  # asked once for the whole batch

    def one_board(port, device_id):
        mac = None
        if args.image:
            from scanbridge_tools.flashing.image import flash_image
            from scanbridge_tools.flashing import boards
            chip = boards.get(args.board)["chip"] if args.board else None
            mac = flash_image(port, Path(args.image), board_chip=chip, erase=args.erase)["mac"]
        with Device(port, timeout_s=args.timeout).open() as dev:
            rep = deploy(port, build_dir, timeout_s=args.timeout, device=dev)
            from scanbridge_tools.flashing.provision import settings_from
            s = settings_from(device_id=device_id, site=args.site, link=args.link, board=args.board, wifi=wifi,
                              broker=args.broker, mqtt_user=args.mqtt_user, mqtt_password=mqtt_pw,
                              mqtt_tls=args.mqtt_tls)
            prov = provision(port, s, replace=args.replace, device=dev)
        return {"mac": mac or mac_from_unique_id(prov["unique_id"]), "fw": rep["fw"], "board": prov["board"],
                "site": prov["config"].get("mqtt_site", ""), "uploaded": len(rep["uploaded"])}

    def wait_for_board(device_id):
        if not args.no_wait:
            try:
                input("connect the board for %s and press Enter (Ctrl-D to stop) " % device_id)
            except EOFError:
                return None
        if args.port:
            return args.port
        from scanbridge.link.discovery import find_scanners
        found = find_scanners()
        if not found:
            raise FlashError("port_not_found", "no scanner found on USB", "check the cable; `scanbridge ports`")
        return found[0].device

    out = (lambda s: None) if args.json else print
    done = run_batch(ids, one_board, wait_for_board, out=out)
    failed = [d for d in done if not d["ok"]]
    return {"boards": done, "ok": len(done) - len(failed), "failed": len(failed)}


def _print(action, r):
    if action == "boards":
        for b in r["boards"]:
            print("%-28s %-10s %s" % (b["id"], b["chip"], b["name"]))
    elif action == "image":
        print("wrote %s at %s on %s (MAC %s)%s" % (Path(r["image"]).name, r["offset"], r["chip"], r["mac"],
                                                  ", verified" if r["verified"] else ""))
    elif action == "deploy":
        if r.get("up_to_date"):
            print("app %s already on %s: %d files up to date, nothing sent" % (r["fw"], r["port"], r["unchanged"]))
        else:
            print("deployed app %s to %s: %d files sent (%d bytes), %d unchanged, verified%s" % (
                r["fw"], r["port"], len(r["uploaded"]), r["bytes_sent"], r["unchanged"],
                "; switched (previous kept for rollback)" if r["switched"] else ""))
            if r["recovered"] not in ("ok", "no_app"):
                print("note: an interrupted switch was found and %s" % r["recovered"].replace("_", " "))
    elif action == "rollback":
        print("rolled back %s to app %s" % (r["port"], r.get("fw") or "?"))
    elif action == "provision":
        if r.get("repaired"):
            print("note: the old config was unusable (%s); written fresh" % r["repaired"])
        print("provisioned %s (unique id %s), board %s, device check: %s" % (r["port"], r["unique_id"], r["board"], r["device_check"]))
        for k in sorted(r["config"]):
            print("  %-24s %s" % (k, json.dumps(r["config"][k])))
    elif action == "batch":
        print("batch: %d ok, %d failed" % (r["ok"], r["failed"]))
