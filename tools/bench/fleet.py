"""`scanbridge bench fleet`: N scanners on WiFi publishing scans at R per second in total through a
real Mosquitto to the bridge, measured from the scan's publish to its RESULT back at the scanner.

The scanners are the firmware's own MQTT client and link (scanbridge_fw.mqtt_link.MqttSession),
all multiplexed in one asyncio loop of this process; the bridge (paho, MQTT 5, shared
subscription) runs in a second process, the broker in a third, with the configuration from
deploy/mosquitto (password file + ACL). The anchor, measured in the same run on the same broker,
is a bare paho QoS 1 publisher -> subscriber pair at the same rate (one way, no bridge)."""
from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

DEVICE_PW = "fleet-device-pw"
BRIDGE_USER, BRIDGE_PW = "fleet-bridge", "fleet-bridge-pw"
SITE = "bench"


def add_arguments(parser):
    parser.add_argument("--scanners", type=int, default=100)
    parser.add_argument("--rate", type=float, default=100.0, help="scans per second, all scanners together")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--drain", type=float, default=15.0, help="seconds to wait for the last RESULTs")
    parser.add_argument("--anchor-seconds", type=float, default=5.0)
    parser.add_argument("--anchor-rate", type=float, default=0, help="default: --rate")
    parser.add_argument("--no-anchor", action="store_true")
    parser.add_argument("--decider", choices=("tokens", "plain"), default="tokens",
                        help="tokens: signed tokens verified + single-use ledger (default when "
                             "bridge/tokens exists); plain: ScanService default + a single-use set")
    parser.add_argument("--ledger", default="", help="ledger URL for --decider tokens "
                        "(default: an SQLite file in the bench's temp folder)")
    parser.add_argument("--workers", type=int, default=1, help="bridge threads deciding scans")
    parser.add_argument("--bridges", type=int, default=1,
                        help="bridge processes in the share group (one ledger file between them)")
    parser.add_argument("--json", action="store_true")


def _raise_fd_limit(need: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, need)) if hard != resource.RLIM_INFINITY else max(soft, need)
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


def _pct(values, q):
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 3)


# ---------------------------------------------------------------- bridge process


def _decider(trust_json, ledger_url):
    """Signed-token verification (issuer signature, expiry, single-use claim in an SQLite ledger)
    when bridge/tokens is available; otherwise the ScanService default plus a single-use set."""
    from scanbridge.scan import REJECTED, Verdict, accept_well_formed
    stats = {"decided": 0}
    if trust_json:
        from scanbridge.ledger import open_ledger
        from scanbridge.tokens import TrustStore, make_decider
        verify = make_decider(TrustStore.from_json(trust_json), open_ledger(ledger_url))

        class Counted:  # counts what reaches the verifier; keeps its batch entry point
            def __call__(self, scan):
                stats["decided"] += 1
                return verify(scan)

            def many(self, scans):
                stats["decided"] += len(scans)
                return verify.many(scans)
        return Counted(), stats, "signed Ed25519 tokens: scanbridge.tokens verifier + SQLite ledger"
    seen: set = set()

    def decide_plain(scan):
        stats["decided"] += 1
        if scan.payload in seen:
            return Verdict(REJECTED, "replayed", "Already used")
        seen.add(scan.payload)
        return accept_well_formed(scan)
    return decide_plain, stats, "ScanService default (accept_well_formed) + in-memory single-use set"


def _cpu_s() -> float:
    import resource
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _bridge_worker(url, trust_json, ledger_url, conn, workers=1, index=1):
    import os
    if os.environ.get("SB_PROFILE"):
        import cProfile
        prof = cProfile.Profile()
        prof.enable()
    from scanbridge.link.mqtt import start_mqtt_link
    from scanbridge.scan import ScanService
    decide, dstats, name = _decider(trust_json, ledger_url)
    import gc
    gc_pauses: list = []
    gc_t0 = [0.0]

    def gc_watch(phase, info):
        if phase == "start":
            gc_t0[0] = time.perf_counter()
        else:
            gc_pauses.append(((time.perf_counter() - gc_t0[0]) * 1000, info["generation"]))
    gc.callbacks.append(gc_watch)
    reasons: dict[str, int] = {}

    service = ScanService(decide)
    lock = threading.Lock()

    def count(scan, verdict):
        with lock:
            reasons[verdict.reason] = reasons.get(verdict.reason, 0) + 1
    service.add_listener(count)
    link = start_mqtt_link(url, service, site=SITE, group="bench", username=BRIDGE_USER,
                           password=BRIDGE_PW, client_id="fleet-bridge-%d" % index, wait=10, workers=workers)
    gc.collect()
    gc.freeze()  # as `scanbridge run` does once it is set up
    conn.send("ready")
    cpu0 = _cpu_s()
    conn.recv()  # "stop"
    time.sleep(0.2)
    dstats["gc_pauses"] = len(gc_pauses)
    dstats["gc_max_ms"] = round(max([p for p, _ in gc_pauses] or [0]), 2)
    dstats["gc_gen2"] = sum(1 for _, g in gc_pauses if g == 2)
    dstats["cpu_ms_per_scan"] = round((_cpu_s() - cpu0) * 1000 / max(1, link.stats()["scans"]), 3)
    if os.environ.get("SB_PROFILE"):
        prof.disable()
        prof.dump_stats(os.environ["SB_PROFILE"])
    conn.send({"reasons": reasons, "decider": name, **dstats, **link.stats()})
    link.stop()


def _mint(count):
    """count signed tokens and the trust store JSON for them, or (None, None) without tokens."""
    try:
        from scanbridge_tools.mint import Issuer
    except ImportError:
        return None, None
    issuer = Issuer.generate("ed25519", "Bench Wallet")
    tokens = [issuer.mint(payer=b"bench", lifetime=3600) for _ in range(count)]
    return tokens, json.dumps({"keys": [issuer.trust_entry()]})


# ---------------------------------------------------------------- scanners


async def _fleet(port, n, rate, seconds, drain, tokens=None):
    from scanbridge_fw import wire
    from scanbridge_fw.mqtt_link import MqttSession

    sent_at: dict[tuple, float] = {}
    latencies: list[float] = []
    results: dict[tuple, int] = {}
    verdicts = {"accepted": 0, "other": 0}
    links = []

    def handler_for(i):
        def on_msg(msg):
            if msg.kind != wire.RESULT:
                return
            key = (i, msg.seq)
            results[key] = results.get(key, 0) + 1
            if results[key] == 1:
                t0 = sent_at.get(key)
                if t0 is not None:
                    latencies.append((time.perf_counter() - t0) * 1000)
                verdicts["accepted" if msg.data["verdict"] == wire.ACCEPTED else "other"] += 1
        return on_msg

    for i in range(n):
        links.append(MqttSession("fleet%04d" % i, SITE, "127.0.0.1", port, password=DEVICE_PW,
                                 hello={"fw": "bench"}, keepalive=60, queue_max=64,
                                 result_timeout_ms=5000, handler=handler_for(i),
                                 backoff=(200, 2000)))
    t_connect = time.perf_counter()
    tasks = [asyncio.create_task(link.run()) for link in links]
    deadline = time.monotonic() + 60
    while sum(link.up for link in links) < n:
        if time.monotonic() > deadline:
            raise RuntimeError("only %d of %d scanners connected" % (sum(l.up for l in links), n))
        await asyncio.sleep(0.05)
    connect_s = time.perf_counter() - t_connect
    import gc
    gc.collect()
    gc.freeze()  # 1,000 simulated devices in one process: keep their set-up out of GC pauses

    total = int(rate * seconds)
    sent = 0
    refused = 0
    t0 = time.perf_counter()
    while sent < total:
        due = min(total, int((time.perf_counter() - t0) * rate) + 1)
        while sent < due:
            i = sent % n
            link = links[i]
            try:
                payload = tokens[sent] if tokens else b"FLEET-%d-%d" % (i, sent)
                seq = link.send(wire.SCAN, {"payload": payload, "decode_ms": 1})
            except wire.WireError:
                refused += 1  # queue full: the scanner would show "busy"; counted, not hidden
                sent += 1
                continue
            sent_at[(i, seq)] = time.perf_counter()
            sent += 1
        await asyncio.sleep(0.002)
    send_s = time.perf_counter() - t0
    end = time.monotonic() + drain
    while len(results) < len(sent_at) and time.monotonic() < end:
        await asyncio.sleep(0.05)
    republished = sum(link.republished for link in links)
    dup_results = sum(link.duplicates for link in links) + sum(c - 1 for c in results.values())
    for link in links:
        link.client.kill()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"sent": len(sent_at), "refused_queue_full": refused, "answered": len(results),
            "accepted": verdicts["accepted"], "not_accepted": verdicts["other"],
            "lost": len(sent_at) - len(results), "duplicate_results": dup_results,
            "republished": republished, "p50_ms": _pct(latencies, 0.50),
            "p99_ms": _pct(latencies, 0.99), "max_ms": _pct(latencies, 1.0),
            "connect_s": round(connect_s, 2), "send_s": round(send_s, 2)}


# ---------------------------------------------------------------- anchor: bare paho QoS 1


def _anchor(port, rate, seconds):
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion
    lat: list[float] = []
    got = [0]
    done = threading.Event()
    total = int(rate * seconds)

    def on_message(client, userdata, msg):
        lat.append((time.perf_counter() - float(msg.payload.decode())) * 1000)
        got[0] += 1
        if got[0] >= total:
            done.set()

    sub = paho.Client(CallbackAPIVersion.VERSION2, client_id="anchor-sub")
    sub.username_pw_set(BRIDGE_USER, BRIDGE_PW)
    sub.on_message = on_message
    subscribed = threading.Event()
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.on_connect = lambda c, *a: c.subscribe("sb/v1/%s/anchor0000/scan" % SITE, 1)
    sub.connect("127.0.0.1", port)
    sub.loop_start()
    pub = paho.Client(CallbackAPIVersion.VERSION2, client_id="anchor0000")
    pub.username_pw_set("anchor0000", DEVICE_PW)
    pub.max_inflight_messages_set(1000)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    subscribed.wait(10)
    t0 = time.perf_counter()
    for k in range(total):
        while time.perf_counter() - t0 < k / rate:
            time.sleep(0.0005)
        pub.publish("sb/v1/%s/anchor0000/scan" % SITE, b"%.9f" % time.perf_counter(), qos=1)
    done.wait(seconds + 15)
    pub.loop_stop()
    sub.loop_stop()
    return {"rate": rate, "sent": total, "received": got[0], "lost": total - got[0],
            "p50_ms": _pct(lat, 0.50), "p99_ms": _pct(lat, 0.99)}


# ---------------------------------------------------------------- main


def run(scanners, rate, seconds, drain=15.0, anchor_seconds=5.0, anchor_rate=0, anchor=True,
        decider="tokens", ledger="", workers=1, bridges=1):
    from scanbridge_tools.broker import Broker
    limit = _raise_fd_limit(scanners * 2 + 256)
    folder = Path(tempfile.mkdtemp(prefix="sb-fleet-"))
    devices = {"fleet%04d" % i: DEVICE_PW for i in range(scanners)}
    devices["anchor0000"] = DEVICE_PW
    broker = Broker(folder, devices, {BRIDGE_USER: BRIDGE_PW}, persistence=False,
                    max_connections=scanners + 64).start()
    tokens, trust_json = _mint(int(rate * seconds)) if decider == "tokens" else (None, None)
    # The anchor runs first, on the same broker, while no bridge is subscribed to its topic.
    anchor_out = _anchor(broker.port, anchor_rate or rate, anchor_seconds) if anchor else None
    ctx = mp.get_context("spawn")
    pipes = []
    procs = []
    for k in range(1, max(1, bridges) + 1):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_bridge_worker, daemon=True,
                           args=(broker.url, trust_json, ledger or "sqlite:%s/ledger.db" % folder, child,
                                 workers, k))
        proc.start()
        pipes.append(parent)
        procs.append(proc)
    try:
        for parent in pipes:
            if not parent.poll(30) or parent.recv() != "ready":
                raise RuntimeError("a bridge process did not start")
        out = asyncio.run(_fleet(broker.port, scanners, rate, seconds, drain, tokens))
        for parent in pipes:
            parent.send("stop")
        each = [parent.recv() if parent.poll(30) else {} for parent in pipes]
        bridge = _merge_bridges(each)
        # A duplicate is a scan answered twice at the scanner, or a token that reached the
        # decider a second time (refused "replayed": it slipped past the link's de-dupe).
        replayed = bridge.get("reasons", {}).get("replayed", 0)
        out.update({"scanners": scanners, "rate": rate, "seconds": seconds, "fd_limit": limit,
                    "workers": workers, "bridges": len(pipes),
                    "duplicates": out["duplicate_results"] + replayed,
                    "bridge": bridge, "decider": bridge.get("decider")})
        if len(each) > 1:
            out["per_bridge"] = each
        if anchor_out is not None:
            out["anchor"] = anchor_out
        return out
    finally:
        for proc in procs:
            proc.join(5)
            if proc.is_alive():
                proc.terminate()
        broker.kill()


def _merge_bridges(each):
    """One bridge's report as it is; several: counts summed, the worst of the percentiles and
    GC pauses, CPU per scan weighted by each bridge's scans."""
    if len(each) == 1:
        return each[0]
    out: dict = {"decider": each[0].get("decider"), "reasons": {}}
    scans = sum(b.get("scans", 0) for b in each)
    for b in each:
        for k, v in b.get("reasons", {}).items():
            out["reasons"][k] = out["reasons"].get(k, 0) + v
        for k in ("scans", "decided", "batches", "gc_pauses", "gc_gen2"):
            out[k] = out.get(k, 0) + b.get(k, 0)
        for k in ("largest_batch", "gc_max_ms", "in_bridge_p50_ms", "in_bridge_p99_ms"):
            if b.get(k) is not None:
                out[k] = max(out.get(k) or 0, b[k])
    out["cpu_ms_per_scan"] = round(sum(b.get("cpu_ms_per_scan", 0) * b.get("scans", 0) for b in each)
                                   / max(1, scans), 3)
    out["scans_per_bridge"] = [b.get("scans", 0) for b in each]
    return out


def main(args):
    out = run(args.scanners, args.rate, args.seconds, args.drain, args.anchor_seconds,
              args.anchor_rate, not args.no_anchor, args.decider, args.ledger, args.workers,
              args.bridges)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print("fleet: %d scanners, %.0f scans/s for %.0f s through mosquitto to %d bridge(s) (decider: %s)"
          % (out["scanners"], out["rate"], out["seconds"], out["bridges"], out["decider"]))
    rows = [("sent", out["sent"]), ("accepted", out["accepted"]), ("lost", out["lost"]),
            ("duplicates", out["duplicates"]), ("refused (queue full)", out["refused_queue_full"]),
            ("republished", out["republished"]), ("p50 ms (publish -> RESULT)", out["p50_ms"]),
            ("p99 ms", out["p99_ms"]), ("max ms", out["max_ms"]), ("connect all, s", out["connect_s"])]
    b = out.get("bridge") or {}
    if b:
        rows += [("bridge: time in bridge p50 / p99 ms", "%s / %s" % (b.get("in_bridge_p50_ms"), b.get("in_bridge_p99_ms"))),
                 ("bridge: decision batches (largest)", "%s (%s)" % (b.get("batches"), b.get("largest_batch"))),
                 ("bridge: CPU ms per scan", b.get("cpu_ms_per_scan")),
                 ("bridge: scans per bridge", " / ".join(str(n) for n in b.get("scans_per_bridge", [b.get("scans")]))),
                 ("bridge: GC pauses (full), longest ms", "%s (%s), %s" % (b.get("gc_pauses"), b.get("gc_gen2"), b.get("gc_max_ms")))]
    if "anchor" in out:
        a = out["anchor"]
        rows += [("anchor: bare paho QoS1 at %.0f/s, received" % a["rate"], "%d/%d" % (a["received"], a["sent"])),
                 ("anchor p50 ms (one way)", a["p50_ms"]), ("anchor p99 ms", a["p99_ms"])]
    for k, v in rows:
        print("  %-42s %s" % (k, v))
    return 0


if __name__ == "__main__":
    sys.exit(main(__import__("argparse").Namespace(scanners=10, rate=50, seconds=3, drain=10,
                                                   anchor_seconds=2, anchor_rate=0, no_anchor=False,
                                                   decider="tokens", ledger="", workers=1,
                                                   bridges=1, json=True)))
