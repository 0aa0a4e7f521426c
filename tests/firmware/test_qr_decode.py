# QR decoder end to end on clean frames (CPython and MicroPython): normal, light-on-dark and
# mirrored codes at a few module sizes, and frames that must decode to nothing or raise.
from scanbridge_fw.qr import decode

# (payload, modules per side, rows as integers with the leftmost module as the top bit)
SAMPLES = (
    # HELLO 1, made with segno (version 1, level M, mask 3)
    (b'HELLO 1', 21, (
        0x1fd57f, 0x105141, 0x174f5d, 0x17535d,
        0x17445d, 0x104041, 0x1fd57f, 0x1000,
        0x16e04b, 0xf212f, 0x5e1f4, 0x163586,
        0xc4294, 0x1486, 0x1fd8db, 0x105fe7,
        0x174241, 0x175c9a, 0x1756a8, 0x104f68,
        0x1fd712,
    )),
    # pay:0042, made with segno (version 2, level Q, mask 5)
    (b'pay:0042', 25, (
        0x1fdb37f, 0x1058d41, 0x1749a5d, 0x174115d,
        0x174935d, 0x104c241, 0x1fd557f, 0x700,
        0x873183, 0xb8e952, 0x558f83, 0x1d9e803,
        0x18dfb33, 0x10be944, 0x11d245f, 0x13a9ed5,
        0x15c71f5, 0x1bb12, 0x1fd875d, 0x1040d11,
        0x1744bf4, 0x174bb65, 0x1744ec9, 0x1057081,
        0x1fcb891,
    )),
    # https://pay.example/t/8f3a, made with segno (version 7, level L, mask 0)
    (b'https://pay.example/t/8f3a', 45, (
        0x1fc26d78797f, 0x104ab4292a41, 0x1750e17b5a5d, 0x1748a42e135d,
        0x1748e5fb475d, 0x104ab71a1841, 0x1fd55555557f, 0x151d186100,
        0x1df979fd2cc4, 0x16892a687889, 0x1bd8b52d610f, 0x1220e17a49aa,
        0x87ab46e1fef, 0x619a16b4aba, 0x64ab52e5fe6, 0x1d8fe176a653,
        0xf579462d83a, 0xd829187a005, 0x14cc4bd6d913, 0x3bc1e84a646,
        0x5ff5bf1e1f7, 0x17121b14b718, 0x1534955e759, 0x1b171f186118,
        0x1fd7bfd15f9, 0x11892a2849e9, 0x554b47d52bf, 0x431e22a49aa,
        0xbe5b57e1ccc, 0xc8da32b4b0e, 0x1e44b79e5ed2, 0x10bde1d6b66b,
        0x14f79782f852, 0xc0293979a17, 0x16b4b96d943, 0xf221dd4a517,
        0x136f5bf1e1f4, 0x121914b514, 0x1fdf4955e559, 0x10521f185f18,
        0x175979fd15f1, 0x1741287872d8, 0x1750b56d727d, 0x1059e08a4b1a,
        0x1fd1b5de1e2f,
    )),
)

# A short payload in a large code (version 13, level M, mask 0, made with segno): its padding
# (0xEC 0x11 repeated) fills the data area with finder-like spots, more than the centre buffer
# holds; the third finder, lowest in the frame, must still get in.
CROWDED = (b'\x1a\x7a\xce', 69, (
    0x1fc4b4366b77777f7f, 0x105a96abbe22222841, 0x174854eeeb99999c5d,
    0x17479fc88addddd15d, 0x175930cddf8888855d, 0x1048ae447199999c41,
    0x1fd55555555555557f, 0xd9aed188888900, 0x154133c99fdddddf12,
    0x2a7d8c9aa88888a84, 0xdc178545edddddfd1, 0x1727981d1b66666664,
    0x18c850334e22222125, 0x19a6cc3e147777757a, 0x27770f3b16666646e,
    0xdb0f922e48888898b, 0x17413001b5dddddfde, 0x283d8d9aa88888a84,
    0x1df17b105edddddfd1, 0xf179a411b66666664, 0x18c8501f4e22222125,
    0x19b6cc6614777775ba, 0x12777313b16666646a, 0xdb0fa22e48888898b,
    0x1f413041b5dddddfde, 0x1283d4d9aa88888a84, 0xdf173405edddddfd1,
    0x7179ad11b66666664, 0xcb503f4e22222125, 0x17b5c036147777757a,
    0x275f333b16666646d, 0x19b27622e4888889aa, 0x1bf23841bfdddddffd,
    0x3121cd9b188888b14, 0x952334055dddddd51, 0x317dad13166666714,
    0x5fa583f5f222223f5, 0x16b570363a7777761a, 0x77df333b56666654e,
    0x1c069622d188888b3b, 0x1ae71841a4dddddf9e, 0x73aecd9a1888889d4,
    0xc4a23484bddddde81, 0x1897ad92e66666694, 0x5caf93b5b22222075,
    0x1731c13e3a7777762a, 0x7f1c03fb56666657e, 0x1d0eb62ad188888b2b,
    0x1acf0a49a4dddddf9e, 0x696edd9a1888889d4, 0xcda22484bddddde81,
    0x1a14a952e66666694, 0x4dafbcb5b22222075, 0x1601c1263a7777762a,
    0x641c147b56666657e, 0x1caeb50ad188888b2b, 0x13ef0b25a4dddddf9e,
    0x686ee8da1888889dc, 0x15ca2e884bddddde81, 0x103140952e66666690,
    0x137af7ab5f222221f9, 0x11c516317777751a, 0x1fc1cde7956666655e,
    0x104eb55ad188888b1b, 0x175c0b45bfddddddfe, 0x1747ea2db488888a86,
    0x175be29865ddddde51, 0x1040cca50a66666786, 0x1fdaffab5e22222257,
))


def render(rows, size, module, inverted=False, mirrored=False, width=0, height=0, quiet=4):
    """A grey frame with the code centred on a light (or dark, when inverted) background."""
    side = (size + 2 * quiet) * module
    width = width or side
    height = height or side
    light = 0 if inverted else 230
    dark = 240 if inverted else 20
    frame = bytearray(bytes([light]) * (width * height))
    ox = (width - side) // 2 + quiet * module
    oy = (height - side) // 2 + quiet * module
    run = bytes([dark]) * module
    for r in range(size):
        bits = rows[r]
        for c in range(size):
            col = c if mirrored else size - 1 - c
            if (bits >> col) & 1:
                for y in range(module):
                    i = (oy + r * module + y) * width + ox + c * module
                    frame[i:i + module] = run
    return frame, width, height


def test_clean_codes_decode():
    for payload, size, rows in SAMPLES:
        frame, w, h = render(rows, size, 2)
        assert decode(frame, w, h) == [payload], payload


def test_larger_modules_and_wide_frame():
    payload, size, rows = SAMPLES[1]
    frame, w, h = render(rows, size, 3, width=120, height=100)
    assert decode(frame, w, h) == [payload]


def test_light_on_dark_code_decodes():
    payload, size, rows = SAMPLES[0]
    frame, w, h = render(rows, size, 2, inverted=True)
    assert decode(frame, w, h) == [payload]


def test_mirrored_code_decodes():
    for payload, size, rows in SAMPLES[:2]:
        frame, w, h = render(rows, size, 2, mirrored=True)
        assert decode(frame, w, h) == [payload]


def test_crowded_code_keeps_its_third_finder():
    payload, size, rows = CROWDED
    for inverted, mirrored in ((False, False), (True, True), (False, True)):
        frame, w, h = render(rows, size, 3, inverted=inverted, mirrored=mirrored)
        assert decode(frame, w, h) == [payload], (inverted, mirrored)


def test_memoryview_input():
    payload, size, rows = SAMPLES[0]
    frame, w, h = render(rows, size, 2)
    assert decode(memoryview(frame), w, h) == [payload]
    assert decode(bytes(frame), w, h) == [payload]


def test_blank_frames_give_nothing():
    for level in (0, 128, 255):
        assert decode(bytes([level]) * (64 * 48), 64, 48) == []


def test_noise_frame_gives_nothing():
    seed = 12345
    frame = bytearray(80 * 60)
    for i in range(len(frame)):
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        frame[i] = (seed >> 16) & 0xFF
    assert decode(frame, 80, 60) == []


def _raises_value_error(fn):
    try:
        fn()
    except ValueError as e:
        return str(e)
    return None


def test_truncated_buffer_raises():
    payload, size, rows = SAMPLES[0]
    frame, w, h = render(rows, size, 2)
    msg = _raises_value_error(lambda: decode(frame[:-1], w, h))
    assert msg is not None and msg.startswith("QR_SHORT_BUFFER")


def test_bad_dimensions_raise():
    for w, h in ((0, 10), (-5, 40), (10, 10), (20, 400)):
        msg = _raises_value_error(lambda: decode(bytes(1000), w, h))
        assert msg is not None and msg.startswith("QR_BAD_DIMENSIONS"), (w, h, msg)


def test_bigger_buffer_is_fine():
    payload, size, rows = SAMPLES[0]
    frame, w, h = render(rows, size, 2)
    assert decode(frame + bytes(100), w, h) == [payload]
