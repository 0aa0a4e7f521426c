// Runs firmware test modules inside the official MicroPython WebAssembly port.
// usage: node mpy_run.mjs <firmware_dir> <heap_bytes> <test_file>...
// Places firmware/ at /lib/scanbridge_fw and each test file at /tests, imports every test
// module, calls each test_* function (awaiting coroutines), and prints one JSON line per test
// prefixed with "@@RESULT ". Exit code 0 when the harness itself ran (tests may have failed).
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import fs from "node:fs";
import path from "node:path";

const [fwDir, heapArg, ...testFiles] = process.argv.slice(2);
const mp = await loadMicroPython({
  heapsize: parseInt(heapArg, 10),
  stdout: (s) => process.stdout.write(s + "\n"),
  stderr: (s) => process.stderr.write(s + "\n"),
});

function copyTree(src, dst) {
  try { mp.FS.mkdir(dst); } catch (e) { /* exists */ }
  for (const name of fs.readdirSync(src)) {
    if (name.startsWith(".") || name === "__pycache__") continue;
    const s = path.join(src, name), d = dst + "/" + name;
    if (fs.statSync(s).isDirectory()) copyTree(s, d);
    else if (name.endsWith(".py") || name.endsWith(".json")) mp.FS.writeFile(d, fs.readFileSync(s));
  }
}
try { mp.FS.mkdir("/lib"); } catch (e) { }
copyTree(fwDir, "/lib/scanbridge_fw");
mp.FS.mkdir("/tests");
const mods = [];
for (const f of testFiles) {
  const base = path.basename(f);
  mp.FS.writeFile("/tests/" + base, fs.readFileSync(f));
  mods.push(base.replace(/\.py$/, ""));
}
// Data files the tests want (e.g. board profiles) can be passed with SB_MPY_FILES=src:dst,...
for (const spec of (process.env.SB_MPY_FILES || "").split(",").filter(Boolean)) {
  const [src, dst] = spec.split(":");
  const parts = dst.split("/").filter(Boolean);
  let cur = "";
  for (const p of parts.slice(0, -1)) { cur += "/" + p; try { mp.FS.mkdir(cur); } catch (e) { } }
  mp.FS.writeFile(dst, fs.readFileSync(src));
}

await mp.runPythonAsync(`
import sys, json, gc
sys.path.insert(0, "/tests")
async def _run_all(mods):
    for modname in mods:
        try:
            mod = __import__(modname)
        except Exception as e:
            sys.print_exception(e)
            print("@@RESULT " + json.dumps({"module": modname, "test": "<import>", "ok": False, "error": repr(e)}))
            continue
        names = sorted(n for n in dir(mod) if n.startswith("test_"))
        for name in names:
            fn = getattr(mod, name)
            gc.collect()
            try:
                r = fn()
                if r is not None and hasattr(r, "send"):
                    await r
                print("@@RESULT " + json.dumps({"module": modname, "test": name, "ok": True}))
            except Exception as e:
                sys.print_exception(e)
                print("@@RESULT " + json.dumps({"module": modname, "test": name, "ok": False, "error": repr(e)}))
await _run_all(${JSON.stringify(mods)})
`);
