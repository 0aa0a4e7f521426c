"""Every firmware test module under tests/firmware also runs inside the real MicroPython
(the official WebAssembly port under Node), test by test."""
import functools
from pathlib import Path

import pytest

from tests.support.micropython import node_available, run_in_micropython, firmware_cases

FW_TESTS = sorted((Path(__file__).parent / "firmware").glob("test_*.py"))
CASES = firmware_cases(FW_TESTS)


@functools.lru_cache(maxsize=1)
def _results():
    return run_in_micropython(FW_TESTS)


@pytest.mark.skipif(not node_available(), reason="node or the MicroPython npm package is missing (npm ci)")
@pytest.mark.parametrize("module,test", CASES, ids=["%s::%s" % c for c in CASES])
def test_in_micropython(module, test):
    results, proc = _results()
    r = results.get((module, test))
    assert r is not None, "no result for %s::%s\nstdout:\n%s\nstderr:\n%s" % (
        module, test, proc.stdout[-3000:], proc.stderr[-3000:])
    assert r["ok"], "%s::%s failed in MicroPython: %s\n%s" % (module, test, r.get("error"), proc.stdout[-3000:])
