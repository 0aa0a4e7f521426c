# Repeat suppression (firmware/dedupe.py); runs in CPython and MicroPython.
from scanbridge_fw.dedupe import Dedupe


def test_same_code_within_window_is_suppressed():
    d = Dedupe(1000)
    assert d.fresh(b"A", 0)
    assert not d.fresh(b"A", 500)
    assert not d.fresh(b"A", 1400)  # still in view: seen 900 ms ago, window slides
    assert d.suppressed == 2


def test_code_counts_again_after_leaving_view_for_window():
    d = Dedupe(1000)
    assert d.fresh(b"A", 0)
    assert d.fresh(b"A", 1000)
    assert d.fresh(b"B", 1001)


def test_different_codes_are_independent_and_bounded():
    d = Dedupe(10000, size=3)
    for i, c in enumerate((b"A", b"B", b"C", b"D")):
        assert d.fresh(c, i)
    assert not d.fresh(b"D", 10)
    assert d.fresh(b"A", 11)  # evicted by the bound: treated as new


def test_forget_lets_a_code_through():
    d = Dedupe(1000)
    assert d.fresh(b"A", 0)
    d.forget(b"A")
    assert d.fresh(b"A", 1)


def test_window_zero_never_suppresses():
    d = Dedupe(0)
    assert d.fresh(b"A", 0) and d.fresh(b"A", 0)


def test_wrapping_ticks():
    d = Dedupe(1000)
    near_wrap = 0x3FFFFFFF - 100
    assert d.fresh(b"A", near_wrap)
    assert not d.fresh(b"A", 200)  # 301 ms later across the wrap
