"""Properties of the QR decoder (CPython, hypothesis + segno): codes with random payloads,
versions, ECC levels and masks decode exactly, also light-on-dark and mirrored; noise, blank,
truncated and mis-sized frames never crash and never invent a payload."""
import random

import pytest
import segno
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanbridge_fw.qr import decode

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def render(matrix, module, inverted=False, mirrored=False, quiet=4, width=0, height=0):
    n = len(matrix)
    side = (n + 2 * quiet) * module
    width = max(width, side)
    height = max(height, side)
    light, dark = (15, 235) if inverted else (235, 15)
    frame = bytearray([light]) * (width * height)
    ox = (width - side) // 2 + quiet * module
    oy = (height - side) // 2 + quiet * module
    for r, row in enumerate(matrix):
        for c, v in enumerate(row):
            if v:
                cc = n - 1 - c if mirrored else c
                for y in range(module):
                    i = (oy + r * module + y) * width + ox + cc * module
                    frame[i:i + module] = bytes([dark]) * module
    return bytes(frame), width, height


payloads = st.one_of(
    st.text(alphabet="0123456789", min_size=1, max_size=60),
    st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:", min_size=1, max_size=50),
    st.binary(min_size=1, max_size=60),
    st.text(min_size=1, max_size=20),
)


@SETTINGS
@given(data=payloads, version=st.integers(1, 15), error=st.sampled_from("lmqh"), mask=st.integers(0, 7),
       module=st.sampled_from([2, 3, 4]), inverted=st.booleans(), mirrored=st.booleans())
def test_generated_codes_decode_exactly(data, version, error, mask, module, inverted, mirrored):
    try:
        # raw bytes go in byte mode (segno would put byte pairs that merely look like
        # Shift JIS into Kanji mode, which no decoder can turn back into the same bytes)
        mode = "byte" if isinstance(data, bytes) else None
        qr = segno.make_qr(data, version=version, error=error, mask=mask, mode=mode, boost_error=False)
    except segno.DataOverflowError:
        return
    if isinstance(data, bytes):
        expected = data
    else:  # segno writes text as ISO-8859-1 when it can, else as UTF-8 (no ECI by default)
        try:
            expected = data.encode("latin-1")
        except UnicodeEncodeError:
            expected = data.encode("utf-8")
    frame, w, h = render(qr.matrix, module, inverted, mirrored)
    got = decode(frame, w, h)
    if qr.mode == "kanji" and not isinstance(data, bytes):  # Kanji mode: Shift JIS comes back
        try:
            expected = data.encode("shift_jis")
        except UnicodeEncodeError:
            pass  # text segno wrote as bytes that merely look like Shift JIS: those come back
    assert got == [expected], (qr.designator, qr.mode, module, inverted, mirrored)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), w=st.integers(21, 120), h=st.integers(21, 120),
       kind=st.sampled_from(["noise", "blocks", "stripes"]))
def test_noise_never_invents_a_payload(seed, w, h, kind):
    rnd = random.Random(seed)
    if kind == "noise":
        frame = bytes(rnd.randrange(256) for _ in range(w * h))
    elif kind == "blocks":  # module-like squares: the hardest kind of random input
        m = rnd.randint(2, 5)
        cells = {(x, y): rnd.randrange(2) for x in range(w // m + 1) for y in range(h // m + 1)}
        frame = bytes(20 if cells[(x // m, y // m)] else 230 for y in range(h) for x in range(w))
    else:
        frame = bytes(20 if (x // rnd.randint(1, 6)) % 2 else 230 for y in range(h) for x in range(w))
    assert decode(frame, w, h) == []


@pytest.mark.parametrize("level", [0, 1, 127, 254, 255])
def test_blank_frames(level):
    assert decode(bytes([level]) * (320 * 240), 320, 240) == []


@settings(max_examples=30, deadline=None)
@given(cut=st.integers(1, 5000), w=st.integers(-10, 400), h=st.integers(-10, 400))
def test_truncated_buffers_and_wrong_dimensions_raise_value_error(cut, w, h):
    qr = segno.make_qr("HELLO", version=1)
    frame, fw, fh = render(qr.matrix, 2)
    buf = frame[:max(0, len(frame) - cut)]
    if w >= 21 and h >= 21 and len(buf) >= w * h:
        decode(buf, w, h)  # a frame that fits: any answer, no crash
        return
    with pytest.raises(ValueError) as e:
        decode(buf, w, h)
    assert str(e.value).split(":")[0] in ("QR_SHORT_BUFFER", "QR_BAD_DIMENSIONS")


def test_wrong_width_never_invents():
    qr = segno.make_qr("PAY-1234", version=2)
    frame, w, h = render(qr.matrix, 3)
    for ww in (w - 1, w + 1, w + 7):
        hh = len(frame) // ww
        got = decode(frame[:ww * hh], ww, hh)
        assert got in ([], [b"PAY-1234"])


def test_two_codes_in_one_frame():
    a = segno.make_qr("FIRST", version=1)
    b = segno.make_qr("SECOND", version=2)
    fa, wa, ha = render(a.matrix, 3)
    fb, wb, hb = render(b.matrix, 3)
    w, h = wa + wb, max(ha, hb)
    frame = bytearray([235]) * (w * h)
    for y in range(ha):
        frame[y * w:y * w + wa] = fa[y * wa:(y + 1) * wa]
    for y in range(hb):
        frame[y * w + wa:y * w + wa + wb] = fb[y * wb:(y + 1) * wb]
    assert sorted(decode(bytes(frame), w, h)) == [b"FIRST", b"SECOND"]
