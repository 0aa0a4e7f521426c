"""`scanbridge outbox`: list, show and retry the confirmations waiting for the payment backend.

    scanbridge outbox list [--state dead]      what is queued, delivered, dead
    scanbridge outbox show ID                  one entry in full (body, answer, last error)
    scanbridge outbox retry ID | --all-dead    a dead letter back to the queue (fresh attempts)
    scanbridge outbox deliver --backend URL    run the delivery worker alone, in the foreground
Works on the same SQLite file as a running bridge (WAL): a retried entry is picked up by it."""
from __future__ import annotations

import json
import sys
import time

from scanbridge.outbox import DEAD, DEFAULT_DB, Database, Deliverer, Outbox, OutboxError, read_secret


def add_arguments(parser):
    parser.add_argument("--db", default=DEFAULT_DB, help="the bridge's counter database (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    p = sub.add_parser("list", help="entries, newest first")
    p.add_argument("--state", choices=("pending", "delivered", "dead"))
    p.add_argument("--limit", type=int, default=50)
    p = sub.add_parser("show", help="one entry in full")
    p.add_argument("id", type=int)
    p = sub.add_parser("retry", help="put dead letters back in the queue")
    p.add_argument("id", type=int, nargs="?")
    p.add_argument("--all-dead", action="store_true")
    p = sub.add_parser("deliver", help="run the delivery worker (until Ctrl-C, or --until-empty)")
    p.add_argument("--backend", required=True, help="payment backend base URL, e.g. http://127.0.0.1:8765")
    p.add_argument("--secret-file", help="HMAC secret file (else $SCANBRIDGE_BACKEND_SECRET)")
    p.add_argument("--max-attempts", type=int, default=12)
    p.add_argument("--base-delay", type=float, default=0.5, help="first retry delay, s (doubles, with jitter)")
    p.add_argument("--max-delay", type=float, default=300.0)
    p.add_argument("--until-empty", action="store_true", help="exit once nothing is pending")


def _line(e: dict) -> str:
    body = e["body"] if isinstance(e["body"], dict) else {}
    amount = body.get("amount")
    amt = "%d.%02d %s" % (amount // 100, amount % 100, body.get("currency", "")) if isinstance(amount, int) else "-"
    when = time.strftime("%H:%M:%S", time.localtime(e["created_at"]))
    return "%6d  %-9s %-13s %-14s %-26s %2d  %s" % (e["id"], e["state"], e["kind"], amt, e["idem_key"][:26],
                                                  e["attempts"], e.get("last_error") or when)


def main(args) -> int:
    action = args.action or "list"
    try:
        outbox = Outbox(Database(args.db))
    except Exception as e:  # sqlite3.Error / OutboxError: the file is not usable
        print("scanbridge outbox: cannot open %s: %s" % (args.db, e), file=sys.stderr)
        return 2
    if action == "list":
        entries = outbox.list(getattr(args, "state", None), getattr(args, "limit", 50))
        if args.json:
            print(json.dumps({"counts": outbox.counts(), "entries": entries}, indent=1))
            return 0
        c = outbox.counts()
        print("pending %d   delivered %d   dead %d" % (c["pending"], c["delivered"], c["dead"]))
        print("%6s  %-9s %-13s %-14s %-26s %2s  %s" % ("id", "state", "kind", "amount", "key", "n", "last error / created"))
        for e in entries:
            print(_line(e))
        return 0
    if action == "show":
        e = outbox.get(args.id)
        if e is None:
            print("scanbridge outbox: no entry %d" % args.id, file=sys.stderr)
            return 1
        print(json.dumps(e, indent=1, sort_keys=True))
        return 0
    if action == "retry":
        if args.all_dead:
            n = outbox.retry_dead()
            print("%d dead letters back in the queue" % n)
            return 0
        if args.id is None:
            print("scanbridge outbox retry: give an ID or --all-dead", file=sys.stderr)
            return 2
        if not outbox.retry(args.id):
            e = outbox.get(args.id)
            print("scanbridge outbox: entry %d is %s, not dead" % (args.id, e["state"] if e else "missing"),
                  file=sys.stderr)
            return 1
        print("entry %d back in the queue" % args.id)
        return 0
    if action == "deliver":
        try:
            secret = read_secret(args.secret_file)
            worker = Deliverer(outbox, args.backend, secret, max_attempts=args.max_attempts,
                               base_delay_s=args.base_delay, max_delay_s=args.max_delay)
        except OutboxError as e:
            print("scanbridge outbox deliver: %s" % e, file=sys.stderr)
            return 2
        worker.start()
        print("delivering to %s" % args.backend, file=sys.stderr, flush=True)
        try:
            while True:
                time.sleep(0.1)
                if args.until_empty and outbox.counts()["pending"] == 0:
                    break
        finally:
            worker.stop()
        c = outbox.counts()
        print(json.dumps(c))
        return 0 if c[DEAD] == 0 else 1
    return 2
