# Runs firmware test modules inside the MicroPython unix port (run BY micropython, not CPython).
# usage: micropython -X heapsize=N mpy_unix_run.py <lib_dir> <test_dir> <scratch_dir> <module>...
# <lib_dir> holds the compiled firmware (scanbridge_fw/**.mpy, as `scanbridge build` lays it
# out); each test module is imported from <test_dir>, its test_* functions called (coroutines
# run with asyncio), and one JSON line per test printed, prefixed with "@@RESULT ".  Files the
# tests write go under <scratch_dir> (the cwd), through a minimal `tempfile` module the tests
# find there: the unix port's filesystem is the host's, its root is not the tests' to write.
import gc
import json
import os
import sys

lib_dir, test_dir, scratch = sys.argv[1], sys.argv[2], sys.argv[3]
os.chdir(scratch)
with open("tempfile.py", "w") as f:
    f.write("import os\n_n = [0]\n"
            "def mkdtemp():\n"
            "    _n[0] += 1\n"
            "    d = %r + '/tmp%%d' %% _n[0]\n"
            "    os.mkdir(d)\n"
            "    return d\n" % scratch)
sys.path.insert(0, scratch)
sys.path.insert(0, test_dir)
sys.path.insert(0, lib_dir)


def _result(module, test, ok, error=None):
    r = {"module": module, "test": test, "ok": ok}
    if error is not None:
        r["error"] = error
    print("@@RESULT " + json.dumps(r))


for modname in sys.argv[4:]:
    try:
        mod = __import__(modname)
    except Exception as e:
        sys.print_exception(e)
        _result(modname, "<import>", False, repr(e))
        continue
    for name in sorted(n for n in dir(mod) if n.startswith("test_")):
        gc.collect()
        try:
            r = getattr(mod, name)()
            if r is not None and hasattr(r, "send"):
                import asyncio
                asyncio.run(r)
            _result(modname, name, True)
        except Exception as e:
            sys.print_exception(e)
            _result(modname, name, False, repr(e))
