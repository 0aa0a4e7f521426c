# The app's link over a serial port (UART0 shared with the REPL, or native USB CDC): wire frames
# with wire.Link's acks and retransmits. The port comes from the board HAL and has
# `async read() -> bytes` (waits for at least one byte) and `write(bytes)`.
from scanbridge_fw import wire
from scanbridge_fw.compat import create_task, sleep_ms, ticks_ms
from scanbridge_fw.link import AppLink


class SerialLink(AppLink):
    name = "serial"

    def __init__(self, port, hello, session, queue_max=16, rto_ms=300):
        super().__init__()
        self.port = port
        self.wire = wire.Link(hello, session, queue_max=queue_max, rto_ms=rto_ms)
        self.stale_results = 0
        self.write_errors = 0
        self.last_error = None
        self._running = False

    # -- sending
    def send_scan(self, scan):
        seq = self.wire.send(wire.SCAN, scan)
        self._flush()
        return seq

    def send_status(self, data):
        try:
            self.wire.send_unreliable(wire.STATUS, data)
        except wire.WireError as e:  # an oversized status must not stop the app
            self.last_error = e.code
        self._flush()

    def send_log(self, text):
        self.wire.send_unreliable(wire.LOG, {"text": text})
        self._flush()

    def ready(self):
        return self.wire.peer is not None

    def status(self):
        d = {"link": self.name, "ready": self.ready(), "stale_results": self.stale_results,
             "write_errors": self.write_errors}
        stats = self.wire.stats()
        for key in stats:
            d[key] = stats[key]
        return d

    def _flush(self):
        out = self.wire.poll(ticks_ms())
        if out:
            try:
                self.port.write(out)
            except OSError as e:  # nobody listening (USB unplugged): wire.Link retransmits later
                self.write_errors += 1
                self.last_error = "write:%s" % e

    # -- the loop
    async def run(self):
        self._running = True
        self.wire.start()
        self._flush()
        create_task(self._timers())
        while self._running:
            data = await self.port.read()
            if data:
                self.feed(data)

    def stop(self):
        self._running = False

    def feed(self, data):
        """Bytes from the port: deliver messages, answer acks at once."""
        for msg in self.wire.receive(data, ticks_ms()):
            self._deliver(msg)
        self._flush()

    def _deliver(self, msg):
        kind = msg.kind
        if kind == wire.RESULT:
            if self.wire.peer is None:
                # A bridge retransmitting a RESULT for our previous boot: it answers our HELLO
                # first, so anything before that cannot be about this session's scans.
                self.stale_results += 1
                return
            self.on_result(msg.data)
        elif kind == wire.COMMAND:
            create_task(self._serve(msg.data))
        elif kind == wire.ERROR:
            self.on_error(str(msg.data.get("code")), str(msg.data.get("message", "")))

    async def _serve(self, data):
        reply = await self.on_command(data)
        try:
            self.wire.send(wire.REPLY, reply)
        except wire.WireError as e:  # too big or queue full: say so instead of going quiet
            self.wire.send_unreliable(wire.ERROR, {"code": e.code, "message": "reply to %s: %s" % (
                data.get("cmd"), e.message)})
        self._flush()

    async def _timers(self):
        # Retransmits; sleeping at most 50 ms keeps this cheap and responsive.
        while self._running:
            now = ticks_ms()
            wait = self.wire.next_deadline(now)
            if wait == 0:
                self._flush()
                wait = self.wire.next_deadline(ticks_ms())
            await sleep_ms(50 if wait < 0 or wait > 50 else max(wait, 1))
