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
    parser.add_argument("--camera-open-failures", type=int, default=0, metavar="N",
                        help="simulate a camera that fails to open N times (-1: never opens)")
    parser.add_argument("--camera-capture-failures", type=int, default=0, metavar="N",
                        help="simulate N failed captures in a row after the camera opened")
    parser.add_argument("--camera-retry-ms", type=int, default=None, metavar="MS",
                        help="first camera retry after a fault (config camera_retry_ms)")


def main(args):
    if args.images:
        frames = ImageStream(args.images, hold=args.hold, repeat=args.repeat)
    else:
        payloads = [p.encode() for p in (args.payload or ["VIRTUAL-SCANNER-TEST-CODE"])]
        frames = CodeStream(payloads, hold=args.hold, repeat=args.repeat)
    config = {}
    if args.camera_retry_ms is not None:
        config["camera_retry_ms"] = args.camera_retry_ms
    vs = VirtualScanner(frames, link_path=args.link, device_id=args.device_id, fps=args.fps, config=config,
                        camera_open_failures=args.camera_open_failures,
                        camera_capture_failures=args.camera_capture_failures)

    def show(event, data):
        if event == "result":
            print("%-8s %-16s %5d ms  %r" % (data["verdict"], data["reason"], data["latency_ms"],
                                              data["payload"][:60]), flush=True)
        elif event in ("no_answer", "refused"):
            print("%-8s %r" % (event, data["payload"][:60]), flush=True)
        elif event == "fault":
            print("fault    %s: %s (retrying)" % (data["reason"], data["message"]), flush=True)
        elif event == "camera":
            print("camera   %s" % data["reason"], flush=True)

    vs.listeners.append(show)
    print("virtual scanner %s: open %s (e.g. scanbridge run --port %s); Ctrl-C stops"
          % (args.device_id, args.link, args.link), file=sys.stderr, flush=True)
    try:
        vs.run_forever()
    except KeyboardInterrupt:
        pass
    return 0
