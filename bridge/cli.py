"""The `scanbridge` command: a thin dispatch table over the subcommand modules.

Each subcommand lives in its own module exposing `add_arguments(parser)` and `main(args) -> int`.
Modules are imported only when their subcommand runs, so a slow or optional dependency of one
command never slows or breaks another."""
import argparse
import importlib
import sys

# name -> (module, one-line help)
COMMANDS = {
    "demo": ("scanbridge.demo", "run a virtual scanner and the bridge on embedded defaults"),
    "run": ("scanbridge.run", "run the bridge at the counter (serial and/or MQTT scanners, web page)"),
    "ports": ("scanbridge.link.discovery", "list scanners attached over USB serial"),
    "mint": ("scanbridge_tools.mint", "wallet simulator: issuer keys, signed payment codes, PNG/terminal/web"),
    "trust": ("scanbridge.tokens.trust_cli", "manage the trust store of issuer public keys"),
    "virtual-scanner": ("scanbridge_tools.virtual_scanner", "run the firmware on this PC with a virtual camera on a pty"),
    "build": ("scanbridge_tools.build", "compile the firmware with mpy-cross for the device"),
    "flash": ("scanbridge_tools.flash", "write a MicroPython image, deploy the app, provision (technician)"),
    "diag": ("scanbridge_tools.diag", "diagnose a scanner over serial or MQTT (technician)"),
    "backend": ("scanbridge_tools.backend", "run the reference payment backend (demo, tests, integrators)"),
    "outbox": ("scanbridge.outbox_cli", "inspect and retry confirmations waiting for the payment backend"),
    "bench": ("scanbridge_tools.bench", "benchmarks: decode, verify, serial, fleet, counter"),
}


def build_parser():
    parser = argparse.ArgumentParser(prog="scanbridge", description=__doc__.splitlines()[0])
    from scanbridge import __version__
    parser.add_argument("--version", action="version", version="scanbridge " + __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in COMMANDS.items():
        sub.add_parser(name, help=help_, add_help=False)
    return parser


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] not in COMMANDS:
        parser.parse_args(argv)  # prints help / version / the usage error
        parser.print_help()
        return 2
    name = argv[0]
    module_name, help_ = COMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and module_name.startswith(e.name):
            print("scanbridge %s: not available in this build (%s missing)" % (name, module_name), file=sys.stderr)
            return 2
        raise
    sub = argparse.ArgumentParser(prog="scanbridge " + name, description=help_)
    module.add_arguments(sub)
    args = sub.parse_args(argv[1:])
    try:
        return int(module.main(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
