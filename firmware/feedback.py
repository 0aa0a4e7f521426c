# What the customer and the cashier see and hear for each outcome: LED colours and beep patterns
# per verdict and reason (documented in docs/feedback.md). Boards without a colour LED map the
# logical LEDs ("ok", "err", "busy") onto what they have (see hal/).
from scanbridge_fw.compat import create_task, sleep_ms

# A pattern is a tuple of steps (led, tone_hz, ms): led is a logical LED name or None (all off),
# tone_hz 0 is silence. Kept short: the next customer is waiting.
READ = (("busy", 0, 60), (None, 0, 0))  # a code was read and sent
ACCEPTED = (("ok", 2700, 120), ("ok", 0, 60), ("ok", 2700, 120), ("ok", 0, 900), (None, 0, 0))
REJECTED = (("err", 400, 600), ("err", 0, 600), (None, 0, 0))
RETRY = (("err", 1200, 100), (None, 0, 100), ("err", 1200, 100), (None, 0, 0))  # scan again
PENDING = (("busy", 2000, 80), ("busy", 0, 1500), (None, 0, 0))  # waiting for the backend
NO_ANSWER = (("busy", 800, 150), (None, 0, 150), ("busy", 800, 150), (None, 0, 150),
             ("busy", 800, 150), (None, 0, 0))  # the bridge did not answer in time
BOOT = (("busy", 0, 100), ("ok", 0, 100), ("err", 0, 100), (None, 0, 0))
# The scanner cannot scan (camera fault, docs/firmware.md): err and busy alternate, the only
# pattern that does; with a low double beep when the fault begins, silent when repeated.
FAULT = (("err", 300, 200), ("busy", 0, 200), ("err", 300, 200), ("busy", 0, 200), ("err", 0, 200),
         (None, 0, 0))
FAULT_REMIND = (("err", 0, 200), ("busy", 0, 200), ("err", 0, 200), ("busy", 0, 200), ("err", 0, 200),
                (None, 0, 0))
RECOVERED = (("ok", 1800, 100), (None, 0, 0))  # the camera works again: scanning resumes

# Reasons that mean "show me again" rather than "this code is refused".
_RETRY_REASONS = ("malformed", "internal_error", "busy", "queue_full",
                  "no_open_order", "order_busy", "no_till", "ledger_unavailable", "backend_unavailable")


def pattern_for(verdict, reason):
    """verdict is "accepted" | "rejected" | "pending" | "no_answer" | "read", or a device state:
    "fault" | "fault_remind" | "recovered"."""
    if verdict == "accepted":
        return ACCEPTED
    if verdict == "pending":
        return PENDING
    if verdict == "no_answer":
        return NO_ANSWER
    if verdict == "read":
        return READ
    if verdict == "fault":
        return FAULT
    if verdict == "fault_remind":
        return FAULT_REMIND
    if verdict == "recovered":
        return RECOVERED
    if reason in _RETRY_REASONS:
        return RETRY
    return REJECTED


class Feedback:
    """Plays patterns on the board's LEDs and buzzer; a new pattern cuts the previous one short."""

    def __init__(self, board, beep=True):
        self.board = board
        self.beep = beep
        self._task = None
        self._gen = 0
        self.played = []  # names of recent patterns (bounded), for status and tests

    def show(self, verdict, reason=""):
        pattern = pattern_for(verdict, reason)
        self.played.append(verdict if verdict != "rejected" or pattern is REJECTED else "retry")
        if len(self.played) > 8:
            self.played.pop(0)
        self._gen += 1
        self._task = create_task(self._play(pattern, self._gen))

    async def _play(self, pattern, gen):
        for led, hz, ms in pattern:
            if gen != self._gen:
                return  # a newer pattern took over
            self.board.led(led)
            self.board.tone(hz if self.beep else 0)
            if ms:
                await sleep_ms(ms)
        if gen == self._gen:
            self.board.led(None)
            self.board.tone(0)
