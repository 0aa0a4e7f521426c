# Boot safety: count boots that did not reach "healthy" and skip the app after MAX_BAD of them,
# so a crash or brownout loop still leaves a REPL that mpremote can take over. Also the two
# manual ways out: a /noapp flag file, and the board's safe-boot pin held at power-up.
# A camera fault is not a crash: the app runs degraded (hal/camera_guard.py), reaches healthy()
# like any boot, and so never counts towards MAX_BAD.
import os

COUNT_PATH = "/bootcount"
NOAPP_PATH = "/noapp"
MAX_BAD = 3


def _read_count(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or "0")
    except (OSError, ValueError):
        return 0


def _write_count(path, n):
    with open(path, "w") as f:
        f.write(str(n))


def on_boot(path=COUNT_PATH):
    """Called from boot.py: one more boot that has not yet proved healthy. Returns the count."""
    n = _read_count(path) + 1
    _write_count(path, n)
    return n


def healthy(path=COUNT_PATH):
    """The app ran long enough: forget earlier bad boots."""
    if _read_count(path) != 0:
        _write_count(path, 0)


def decide(count_path=COUNT_PATH, noapp_path=NOAPP_PATH, pin_held=False):
    """("app", "") to start the app, or ("repl", why) to stay at the REPL."""
    if _exists(noapp_path):
        return "repl", "%s exists (delete it to run the app)" % noapp_path
    if pin_held:
        return "repl", "safe-boot pin held"
    n = _read_count(count_path)
    if n > MAX_BAD:
        return "repl", "%d boots in a row did not become healthy; run bootguard.healthy() or reset the count" % (n - 1)
    return "app", ""


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False
