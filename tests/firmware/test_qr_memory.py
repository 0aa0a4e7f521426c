# Memory of the QR decoder inside MicroPython (gc.mem_alloc; CPython only checks behaviour):
# - its buffers are sized once per resolution and fit the 160 KB budget at QVGA;
# - decoding a clean QVGA frame with the GC off allocates less than the budget in total (an
#   upper bound of the peak beyond the buffers);
# - decoding more frames keeps no memory (where the port's GC can show it).
# Hard frames allocate more short-lived objects (boxed floats in the perspective fit): see
# docs/decoder.md, "Memory".
import gc

from scanbridge_fw.qr import decoder
from test_qr_decode import SAMPLES, render

BUDGET = 160 * 1024


def _mem_alloc():
    f = getattr(gc, "mem_alloc", None)  # MicroPython only
    return f() if f else None


def test_buffers_for_qvga_fit_the_budget():
    gc.collect()
    a = _mem_alloc()
    d = decoder.Decoder(320, 240)
    gc.collect()
    b = _mem_alloc()
    assert d.max_version == 40
    if a is not None:
        assert b - a < BUDGET, b - a


def test_clean_qvga_frame_allocates_within_budget():
    payload, size, rows = SAMPLES[0]
    frame, w, h = render(rows, size, 4, width=320, height=240)
    d = decoder.Decoder(320, 240)
    gc.collect()
    a = _mem_alloc()
    gc.disable()
    try:
        got = d.decode(frame)
        b = _mem_alloc()
    finally:
        gc.enable()
    assert got == [payload]
    if a is not None:
        assert b - a < BUDGET, b - a


def _gc_reclaims():
    """True when gc.collect() really frees garbage here (the WebAssembly port's GC does not
    while a test runs inside the JS event loop, so retention cannot be measured there)."""
    gc.collect()
    a = _mem_alloc()
    junk = [bytearray(1024) for _ in range(64)]
    junk = None
    gc.collect()
    return a is not None and junk is None and _mem_alloc() - a < 32 * 1024


def test_decoding_keeps_no_memory():
    payload, size, rows = SAMPLES[1]
    frame, w, h = render(rows, size, 3, width=320, height=240)
    d = decoder.Decoder(320, 240)
    assert d.decode(frame) == [payload]
    gc.collect()
    a = _mem_alloc()
    for _ in range(2):
        assert d.decode(frame) == [payload]
    gc.collect()
    b = _mem_alloc()
    if _gc_reclaims():
        assert b - a < 4096, b - a
