// Serves the REPL of the official MicroPython WebAssembly port on stdin/stdout, byte for byte,
// so a pty relay (tests/support/repl_pty.py) can present it as a serial device to mpremote.
// usage: node mpy_repl.mjs [heap_bytes]
// The port's filesystem is Emscripten's MEMFS (writable, lives as long as this process), so
// `mpremote fs cp/ls/rm/mkdir` work on it. Characters are fed one at a time and each is awaited:
// the raw REPL runs code with asyncify, and feeding the next byte before it finishes would
// interleave two executions.
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";

const heap = parseInt(process.argv[2] || "4194304", 10);
let pending = [];
let flushScheduled = false;
function flush() {
  flushScheduled = false;
  if (pending.length) {
    process.stdout.write(Buffer.from(pending));
    pending = [];
  }
}
const mp = await loadMicroPython({
  heapsize: heap,
  linebuffer: false,
  stdout: (bytes) => {
    for (const b of bytes) pending.push(b);
    if (!flushScheduled) { flushScheduled = true; setImmediate(flush); }
  },
});
try { mp.FS.mkdir("/lib"); } catch (e) { /* exists */ }
mp.replInit();
flush();

// A Ctrl-D on an empty raw-REPL line asks for a soft reset (mpremote does this before its first
// command). Like a board's main loop: say so, start a fresh VM (modules and globals gone; the
// filesystem stays, as flash would), and re-enter the REPL in the mode it was in.
function softReboot() {
  flush();
  process.stdout.write("MPY: soft reboot\r\n");
  mp._module.ccall("mp_js_init", "null", ["number", "number"], [2048, heap]);
  mp._module.ccall("proxy_c_init", "null", [], []);
  mp.replInit();
  flush();
}

const queue = [];
let busy = false;
async function drain() {
  if (busy) return;
  busy = true;
  while (queue.length) {
    if (queue[0] === 0x05) {
      // mpremote asks for raw-paste mode with Ctrl-E "A" Ctrl-A. The port starts it, then waits
      // for paste data in a way that never returns under Node, so answer "R\x00" ("understood,
      // not supported") as the protocol allows; mpremote then uses the plain raw REPL.
      if (queue.length < 3) break;  // the rest of the request is still on its way
      if (queue[1] === 0x41 && queue[2] === 0x01) {
        queue.splice(0, 3);
        pending.push(0x52, 0x00);
        flush();
        continue;
      }
    }
    const c = queue.shift();
    const r = await mp.replProcessCharWithAsyncify(c);
    if (r) softReboot();
  }
  busy = false;
  flush();
}
process.stdin.on("data", (data) => {
  for (const b of data) queue.push(b);
  drain();
});
process.stdin.on("end", () => { flush(); process.exit(0); });
