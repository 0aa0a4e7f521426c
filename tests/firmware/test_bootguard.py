# Crash-loop guard and the ways back to the REPL (firmware/bootguard.py).
import os

from scanbridge_fw import bootguard


def _paths(name):
    try:
        import tempfile
        d = tempfile.mkdtemp()
    except ImportError:
        d = "/" + name
        try:
            os.mkdir(d)
        except OSError:
            pass
    return d + "/bootcount", d + "/noapp"


def test_app_runs_until_three_boots_fail():
    count, noapp = _paths("bg1")
    for _ in range(3):
        bootguard.on_boot(count)
        assert bootguard.decide(count, noapp)[0] == "app"
    bootguard.on_boot(count)  # a fourth boot after three that never became healthy
    what, why = bootguard.decide(count, noapp)
    assert what == "repl" and "3 boots" in why


def test_healthy_resets_the_count():
    count, noapp = _paths("bg2")
    for _ in range(3):
        bootguard.on_boot(count)
    bootguard.healthy(count)
    bootguard.on_boot(count)
    assert bootguard.decide(count, noapp)[0] == "app"


def test_noapp_file_and_pin_skip_the_app():
    count, noapp = _paths("bg3")
    bootguard.on_boot(count)
    assert bootguard.decide(count, noapp, pin_held=True) == ("repl", "safe-boot pin held")
    with open(noapp, "w") as f:
        f.write("")
    what, why = bootguard.decide(count, noapp)
    assert what == "repl" and "noapp" in why


def test_garbage_count_file_counts_as_zero():
    count, noapp = _paths("bg4")
    with open(count, "w") as f:
        f.write("xx")
    assert bootguard.on_boot(count) == 1
