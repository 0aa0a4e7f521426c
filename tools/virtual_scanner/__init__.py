"""`scanbridge virtual-scanner`: the firmware app on this PC with a virtual camera, its UART on a
pseudo-terminal. Point a bridge at the printed path (`scanbridge run --port PATH`)."""
import os
import sys

from scanbridge_tools.virtual_scanner.frames import CodeStream, ImageStream
from scanbridge_tools.virtual_scanner.scanner import VirtualScanner


def add_arguments(parser):
    parser.add_argument("--link", default=os.path.join(os.environ.get("XDG_RUNTIME_DIR", "/tmp"), "scanbridge-vscan0"),
                        help="stable path (symlink) the bridge opens (default %(default)s)")
    parser.add_argument("--images", nargs="*", default=None, help="image files to show the camera (PNG/JPEG)")
    parser.add_argument("--payload", action="append", default=None,
                        help="a payload to show as a generated scene (repeatable)")
    parser.add_argument("--repeat", action="store_true", help="start over after the last code")
    parser.add_argument("--hold", type=int, default=3, help="frames each code stays in view")
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--device-id", default="virtual-0001")


def main(args):
    if args.images:
        frames = ImageStream(args.images, hold=args.hold, repeat=args.repeat)
    else:
        payloads = [p.encode() for p in (args.payload or ["VIRTUAL-SCANNER-TEST-CODE"])]
        frames = CodeStream(payloads, hold=args.hold, repeat=args.repeat)
    vs = VirtualScanner(frames, link_path=args.link, device_id=args.device_id, fps=args.fps)

    def show(event, data):
        if event == "result":
            print("%-8s %-16s %5d ms  %r" % (data["verdict"], data["reason"], data["latency_ms"],
                                              data["payload"][:60]), flush=True)
        elif event in ("no_answer", "refused"):
            print("%-8s %r" % (event, data["payload"][:60]), flush=True)

    vs.listeners.append(show)
    print("virtual scanner %s: open %s (e.g. scanbridge run --port %s); Ctrl-C stops"
          % (args.device_id, args.link, args.link), file=sys.stderr, flush=True)
    try:
        vs.run_forever()
    except KeyboardInterrupt:
        pass
    return 0
