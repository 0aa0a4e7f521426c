# The few places where MicroPython and CPython differ for the app: millisecond clocks that wrap
# like the device's, and asyncio helpers MicroPython names differently. Import these from here.
import asyncio
import time

try:
    from micropython import const
except ImportError:  # CPython
    def const(__x):
        return __x

_PERIOD = const(0x40000000)  # MicroPython's ticks_ms wraps at 2**30; wire.py assumes the same

if hasattr(time, "ticks_ms"):
    ticks_ms = getattr(time, "ticks_ms")
    ticks_diff = getattr(time, "ticks_diff")
    ticks_add = getattr(time, "ticks_add")
    MICROPYTHON = True
else:
    _monotonic = getattr(time, "monotonic")
    _t0 = _monotonic()

    def ticks_ms():
        return int((_monotonic() - _t0) * 1000) & (_PERIOD - 1)

    def ticks_diff(a, b):
        d = (a - b) & (_PERIOD - 1)
        return d - _PERIOD if d & (_PERIOD >> 1) else d

    def ticks_add(a, d):
        return (a + d) & (_PERIOD - 1)

    MICROPYTHON = False


async def sleep_ms(ms):
    if hasattr(asyncio, "sleep_ms"):
        await getattr(asyncio, "sleep_ms")(ms)
    else:
        await asyncio.sleep(ms / 1000)


async def wait_for_ms(aw, ms):
    """Await `aw` for at most `ms`; raises asyncio.TimeoutError after that."""
    if hasattr(asyncio, "wait_for_ms"):
        return await getattr(asyncio, "wait_for_ms")(aw, ms)
    return await asyncio.wait_for(aw, ms / 1000)


def create_task(coro):
    return asyncio.create_task(coro)


def is_coroutine(x):
    # MicroPython coroutines are generators: both have send(); plain results do not
    return hasattr(x, "send")
