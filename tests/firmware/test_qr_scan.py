# The streaming mode of the QR decoder (Decoder.scan / qr.scan, what the scanner loop runs): one
# binarisation pass per frame, capped fit work, the pass that last read tried first.
from scanbridge_fw import qr
from scanbridge_fw.qr import decoder
from test_qr_decode import SAMPLES, render


def _frames_to_read(dec, frame, limit):
    for k in range(limit):
        if dec.scan(frame):
            return k + 1
    return 0


def test_a_code_in_view_reads_and_keeps_its_pass():
    payload, size, rows = SAMPLES[1]
    frame, w, h = render(rows, size, 3, width=160, height=120)
    dec = decoder.Decoder(w, h)
    n = _frames_to_read(dec, frame, 2 * len(decoder.PASSES))
    assert n >= 1
    good = dec.last_pass
    # the next frames of the same scene read at once, with the same pass
    for _ in range(3):
        assert dec.scan(frame) == [payload]
        assert dec.last_pass == good


def test_light_on_dark_code_is_reached_by_the_rotation():
    payload, size, rows = SAMPLES[0]
    frame, w, h = render(rows, size, 3, inverted=True, width=120, height=96)
    dec = decoder.Decoder(w, h)
    assert _frames_to_read(dec, frame, 2 * len(decoder.PASSES)) >= 1
    assert decoder.PASSES[dec.last_pass][1] is True  # an inverted pass read it
    assert dec.scan(frame) == [payload]


def test_a_fresh_decoder_reads_a_brief_code_wherever_its_rotation_is():
    # a phone held up for only two frames, after any number of empty frames
    payload, size, rows = SAMPLES[1]
    frame, w, h = render(rows, size, 3, width=160, height=120)
    blank = bytes(w * h)
    for idle in range(len(decoder.PASSES) + 1):
        dec = decoder.Decoder(w, h)
        for _ in range(idle):
            dec.scan(blank)
        assert _frames_to_read(dec, frame, 2) >= 1, idle


def test_blank_frames_visit_every_pass_and_stay_cheap():
    w, h = 96, 80
    dec = decoder.Decoder(w, h)
    blank = bytes(w * h)
    seen = set()
    for _ in range(2 * len(decoder.PASSES)):
        assert dec.scan(blank) == []
        seen.add(dec.last_pass)
    assert seen == set(range(len(decoder.PASSES)))
    assert dec.fitter.steps == 0


def test_alternates_with_the_last_good_pass_while_nothing_reads():
    payload, size, rows = SAMPLES[1]
    frame, w, h = render(rows, size, 3, width=160, height=120)
    dec = decoder.Decoder(w, h)
    assert _frames_to_read(dec, frame, 2 * len(decoder.PASSES))
    good = dec.last_pass
    blank = bytes(w * h)
    passes = []
    for _ in range(6):
        dec.scan(blank)
        passes.append(dec.last_pass)
    assert passes[0::2] == [good] * 3  # every other frame retries the pass that read
    assert good not in passes[1::2] and len(set(passes[1::2])) == 3  # the rest rotate


def test_fit_steps_per_frame_are_capped():
    # a frame full of finder-like squares: many candidate triples, none a code
    w, h = 160, 120
    frame = bytearray(bytes([230]) * (w * h))
    for oy in range(4, h - 30, 28):
        for ox in range(4, w - 30, 28):
            for y in range(21):
                for x in range(21):
                    ring = max(abs(x // 3 - 3), abs(y // 3 - 3))
                    if ring != 2:
                        frame[(oy + y) * w + ox + x] = 20
    dec = decoder.Decoder(w, h)
    for _ in range(len(decoder.PASSES)):
        before = dec.fitter.steps
        assert dec.scan(frame) == []
        assert dec.fitter.steps - before <= decoder.STREAM_STEPS
        assert dec.fitter.budget == -1  # decode() after scan() is not capped
    assert dec.fitter.steps > 0


def test_module_level_scan_and_decode_share_the_decoder():
    payload, size, rows = SAMPLES[0]
    frame, w, h = render(rows, size, 2, width=80, height=64)
    assert qr.decode(frame, w, h) == [payload]
    d = qr.decoder_for(w, h)
    got = []
    for _ in range(4):
        got = qr.scan(frame, w, h)
        if got:
            break
    assert got == [payload]
    assert qr.decoder_for(w, h) is d
    try:
        qr.scan(frame[:100], w, h)
    except ValueError as e:
        assert "QR_SHORT_BUFFER" in str(e)
    else:
        raise AssertionError("short buffer accepted")
