# LED/beep patterns per verdict and reason (firmware/feedback.py, docs/feedback.md).
from scanbridge_fw import feedback
from scanbridge_fw.compat import sleep_ms


class Rec:
    def __init__(self):
        self.steps = []

    def led(self, name):
        self.steps.append(("led", name))

    def tone(self, hz):
        self.steps.append(("tone", hz))


def test_patterns_by_verdict_and_reason():
    assert feedback.pattern_for("accepted", "ok") is feedback.ACCEPTED
    assert feedback.pattern_for("rejected", "expired") is feedback.REJECTED
    assert feedback.pattern_for("rejected", "replayed") is feedback.REJECTED
    assert feedback.pattern_for("rejected", "malformed") is feedback.RETRY
    # the code was not used up: the cashier opens the order / the customer shows it again
    assert feedback.pattern_for("rejected", "no_open_order") is feedback.RETRY
    assert feedback.pattern_for("rejected", "replayed") is feedback.REJECTED
    assert feedback.pattern_for("pending", "") is feedback.PENDING
    assert feedback.pattern_for("no_answer", "") is feedback.NO_ANSWER


def test_every_pattern_ends_dark_and_silent():
    for p in (feedback.READ, feedback.ACCEPTED, feedback.REJECTED, feedback.RETRY, feedback.PENDING,
              feedback.NO_ANSWER, feedback.BOOT):
        assert p[-1][0] is None and p[-1][1] == 0
        assert sum(step[2] for step in p) <= 2000  # the next customer is waiting


async def test_newer_pattern_cuts_the_old_one_short():
    board = Rec()
    fb = feedback.Feedback(board)
    fb.show("pending")
    await sleep_ms(20)
    fb.show("accepted")
    await sleep_ms(400)
    tones = [v for k, v in board.steps if k == "tone" and v]
    assert tones[0] == 2000 and 2700 in tones
    assert fb.played == ["pending", "accepted"]


async def test_beep_off_keeps_leds():
    board = Rec()
    fb = feedback.Feedback(board, beep=False)
    fb.show("rejected", "expired")
    await sleep_ms(30)
    assert ("led", "err") in board.steps
    assert not [v for k, v in board.steps if k == "tone" and v]
