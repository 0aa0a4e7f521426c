"""`scanbridge diag`: find out why a scanner "doesn't read".

    scanbridge diag -p PORT                 full report: identity, health, camera, self-test,
                                            snapshot decoded here, latency, link, PROBLEMS + fixes
    scanbridge diag -p PORT snapshot -o shot.png     one camera frame, saved and analysed
    scanbridge diag -p PORT selftest | info | health | camera | latency [--count N]
    scanbridge diag -p PORT log [--seconds S]        live log (scans, results, failures, STATUS)
    scanbridge diag failures                         the known-failure table with fixes
    scanbridge diag --mqtt mqtt://HOST --site S --device D --user U [ACTION]   over MQTT
                                            (password from SCANBRIDGE_MQTT_PASSWORD or a prompt)
Add --json for machine-readable output. Over serial the port must be free (stop `scanbridge run`)."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from scanbridge_tools.diagnostics.errors import DiagError

ACTIONS = ("report", "info", "health", "camera", "selftest", "snapshot", "latency", "log", "failures")


def add_arguments(parser):
    parser.add_argument("action", nargs="?", default="report", choices=ACTIONS)
    parser.add_argument("-p", "--port", help="serial port of the scanner")
    parser.add_argument("--baud", type=int, default=115200)
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the scanner")
    parser.add_argument("-o", "--out", help="snapshot: save the image here (PNG)")
    parser.add_argument("--step", type=int, default=1, help="snapshot: 2 = half resolution (faster)")
    parser.add_argument("--count", type=int, default=10, help="latency: round trips")
    parser.add_argument("--seconds", type=float, default=0, help="log: stop after this long (0: Ctrl-C)")
    parser.add_argument("--no-selftest", action="store_true", help="report: skip the self-test (LEDs, beep)")
    parser.add_argument("--no-snapshot", action="store_true", help="report: skip the snapshot")
    parser.add_argument("--mqtt", metavar="URL", help="diagnose over MQTT instead (mqtt://host:port)")
    parser.add_argument("--site", default="default", help="MQTT: the scanner's site")
    parser.add_argument("--device", help="MQTT: the scanner's device id")
    parser.add_argument("--user", help="MQTT: broker user (a bridge user)")
    parser.add_argument("--json", action="store_true")


def main(args) -> int:
    if args.action == "failures":
        from scanbridge_tools.diagnostics.failures import KNOWN
        rows = [{"id": i, "title": t, "fix": fx} for i, t, _, fx in KNOWN]
        if args.json:
            print(json.dumps(rows, indent=1))
        else:
            for r in rows:
                print("%-26s %s\n%26s fix: %s" % (r["id"], r["title"], "", r["fix"]))
        return 0
    if not args.port and not args.mqtt:
        print("scanbridge diag: give the scanner's port with -p (see `scanbridge ports`) or --mqtt URL",
              file=sys.stderr)
        return 2
    try:
        with _transport(args) as t:
            result = _run(args, t)
    except DiagError as e:
        if args.json:
            print(json.dumps({"ok": False, "error": e.as_dict()}))
        else:
            print("scanbridge diag %s failed: %s" % (args.action, e), file=sys.stderr)
        return 1
    if result is None:
        return 0
    if args.json:
        print(json.dumps(result, indent=1, sort_keys=True, default=str))
    elif args.action == "report":
        from scanbridge_tools.diagnostics.report import human
        print(human(result))
    else:
        print(json.dumps(result, indent=1, sort_keys=True, default=str))
    if args.action == "report":
        return 3 if result.get("findings") else 0
    return 0


def _transport(args):
    if args.mqtt:
        import getpass
        import os
        from scanbridge_tools.diagnostics.mqtt_transport import MqttDiag
        if not args.device:
            raise DiagError("bad_option", "--mqtt needs --device ID")
        password = os.environ.get("SCANBRIDGE_MQTT_PASSWORD")
        if password is None and args.user and sys.stdin.isatty():
            password = getpass.getpass("MQTT password for %s: " % args.user)
        return MqttDiag(args.mqtt, args.site, args.device, args.user, password, args.timeout)
    from scanbridge_tools.diagnostics.serial_transport import SerialDiag
    return SerialDiag(args.port, args.baud, args.timeout)


def _run(args, t):
    from scanbridge_tools.diagnostics import report
    if args.action == "report":
        out = Path(args.out) if args.out else None
        return report.gather(t, do_selftest=not args.no_selftest, do_snapshot=not args.no_snapshot,
                             snapshot_path=out, pings=args.count)
    if args.action in ("info", "health", "camera", "selftest"):
        return t.command("diag." + args.action, timeout_s=max(args.timeout, 30))
    if args.action == "snapshot":
        return report.take_snapshot(t, Path(args.out) if args.out else None, step=args.step)
    if args.action == "latency":
        r = report.latency(t, args.count)
        r["link"] = t.stats()
        return r
    if args.action == "log":
        return _live_log(args, t)
    raise DiagError("bad_option", args.action)


def _live_log(args, t):
    def show(text):
        line = {"t": round(time.time(), 3), "log": text}
        print(json.dumps(line) if args.json else "%s  %s" % (time.strftime("%H:%M:%S"), text), flush=True)
    t.on_log = show
    t.command("diag.log", {"on": True})
    end = time.monotonic() + args.seconds if args.seconds else None
    seen = 0
    try:
        while end is None or time.monotonic() < end:
            t.pump(0.1)
            for st in t.statuses[seen:]:
                if args.json:
                    print(json.dumps({"t": round(time.time(), 3), "status": st}), flush=True)
                else:
                    fault = st.get("fault")
                    print("%s  STATUS frames=%s scans=%s results=%s mem_free=%s%s" % (
                        time.strftime("%H:%M:%S"), st.get("frames"), st.get("scans"), st.get("results"),
                        st.get("mem_free"), "  FAULT %s: %s" % (fault.get("code"), fault.get("message"))
                        if fault else ""), flush=True)
            seen = len(t.statuses)
    except KeyboardInterrupt:
        pass
    finally:
        try:
            t.command("diag.log", {"on": False})
        except DiagError:
            pass  # the scanner went away; nothing to switch off
    return None
