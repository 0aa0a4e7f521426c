"""`scanbridge bench NAME`: each benchmark is a module here with add_arguments(parser) and main(args).

Benchmarks measure; tests assert. Every benchmark prints a table (or --json) that includes the
anchors it is compared against, measured in the same run. Figures go to docs/BENCHMARKS.md."""
import argparse
import importlib

BENCHES = {
    "decode": "scanbridge_tools.bench.decode",
    "decode-sweep": "scanbridge_tools.bench.decode_sweep",
    "verify": "scanbridge_tools.bench.verify",
    "serial": "scanbridge_tools.bench.serial_latency",
    "fleet": "scanbridge_tools.bench.fleet",
    "counter": "scanbridge_tools.bench.counter",
}


def add_arguments(parser):
    parser.add_argument("name", choices=sorted(BENCHES))
    parser.add_argument("rest", nargs=argparse.REMAINDER)


def main(args):
    module = importlib.import_module(BENCHES[args.name])
    sub = argparse.ArgumentParser(prog="scanbridge bench " + args.name)
    module.add_arguments(sub)
    return module.main(sub.parse_args(args.rest))
