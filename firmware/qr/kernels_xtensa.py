# Hand-written Xtensa versions of the kernels that run on every frame, for the ESP32 only.
#
# The viper emitter for xtensawin keeps two locals in registers and builds a bool for every
# comparison (docs/xtensa-sim.md), so `kernels.block_stats` costs ~50 instructions per pixel it
# reads; the same loop in the inline assembler (`@micropython.asm_xtensa`, compiled by
# `mpy-cross -march=xtensawin`) keeps everything in registers: 6 per pixel, and find_rows 4 per
# pixel of a run.
#
# kernels.py stays the definition: each function here computes exactly what its namesake
# there computes (the plain Python that CPython and the WebAssembly MicroPython run, and the
# viper code), from the same arguments packed into an int32 parameter array (the inline
# assembler takes at most 4 arguments, in a2..a5).  That is checked here by running this
# machine code in tools/bench/xtensa_sim.py against the Python kernel on the calls of real
# scans (tests/test_kernels_xtensa.py), and on the device by accel.py, which compares each
# with the viper kernel on test input before using it.  Only a device build has this module
# (tools/build.py compiles it for xtensa architectures only); elsewhere importing it fails and
# the viper or Python kernel runs.
# pyright: reportUndefinedVariable=false, reportAttributeAccessIssue=false
import micropython



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



@micropython.asm_xtensa
def find_rows(a2, a3, a4, a5):
    # a2 img, a3 thr (block thresholds), a4 out (uint16 hits: 2 x centre, y, width), a5 params
    # (int32): [0] tk [1] w [2] y0 [3] y1 [4] step [5] tol [6] maxn; scratch [7] n [8] y
    # [9] row pointer [10] bsz [11] inv [12] img [13] thr [14] out [15] bw [16] sh [17] r0
    # [18] runs [19] ie (saved) [21] the colour of the run that ended.  Returns n.
    # kernels.find_rows: runs of "grey <= threshold" and "grey > threshold" pixels along every
    # step-th row, the threshold that of the pixel's block; a dark run ending a 1:1:3:1:1 run
    # pattern within tol percent is a hit.  Registers while scanning: a3 the block's threshold
    # pointer, a4 params, a5..a8 the last four runs (r1..r4; r0 in [17]), a9 the run's start,
    # a10 the pixel pointer, a11 the block's end, a12 its threshold, a13 the pixel, a14 the
    # row's end, a2 and a15 scratch.  Conditional branches only go back (see block_stats).
    s32i(a2, a5, 48)
    s32i(a3, a5, 52)
    s32i(a4, a5, 56)
    mov(a4, a5)
    l32i(a13, a4, 0)
    movi(a15, 7)
    and_(a2, a13, a15)
    s32i(a2, a4, 64)  # sh = tk & 7
    srli(a15, a13, 3)
    movi(a2, 1)
    and_(a15, a15, a2)
    s32i(a15, a4, 44)  # inv: dark = grey above the threshold
    srli(a15, a13, 4)
    s32i(a15, a4, 60)  # bw
    l32i(a2, a4, 64)
    movi(a15, 1)
    ssl(a2)
    sll(a15, a15)
    s32i(a15, a4, 40)  # bsz = 1 << sh
    movi(a2, 0)
    s32i(a2, a4, 28)  # n = 0
    l32i(a2, a4, 8)
    s32i(a2, a4, 32)  # y = y0
    j(ytest)
    # trampolines: a conditional branch reaches a later label through one of these
    label(after_hit_tr)
    j(after_hit)
    label(restore_tr)
    j(restore)
    label(row_done_tr)
    j(row_done)
    label(le_end_tr)
    j(le_end)
    label(gt_end_tr)
    j(gt_end)
    label(le_exit)
    j(le_blk)
    label(gt_exit)
    j(gt_blk)
    # a run of pixels <= t from a10
    label(le_loop)
    addi(a10, a10, 1)
    label(le_scan)
    bge(a10, a11, le_exit)
    l8ui(a13, a10, 0)
    bge(a12, a13, le_loop)
    j(le_end)
    # a run of pixels > t from a10
    label(gt_loop)
    addi(a10, a10, 1)
    label(gt_scan)
    bge(a10, a11, gt_exit)
    l8ui(a13, a10, 0)
    blt(a12, a13, gt_loop)
    j(gt_end)
    # the run reached its block's end: the row's end ends it, else on with the next block
    label(le_blk)
    beq(a11, a14, le_end_tr)
    addi(a3, a3, 1)
    l8ui(a12, a3, 0)
    l32i(a13, a4, 40)
    add(a11, a11, a13)
    sub(a13, a11, a14)
    srai(a15, a13, 31)
    and_(a13, a13, a15)
    add(a11, a14, a13)  # ie = min(ie + bsz, rend)
    j(le_scan)
    label(gt_blk)
    beq(a11, a14, gt_end_tr)
    addi(a3, a3, 1)
    l8ui(a12, a3, 0)
    l32i(a13, a4, 40)
    add(a11, a11, a13)
    sub(a13, a11, a14)
    srai(a15, a13, 31)
    and_(a13, a13, a15)
    add(a11, a14, a13)
    j(gt_scan)
    # a run [a9, a10) ended: a2 = its colour (0: grey <= t, 1: grey > t)
    label(le_end)
    movi(a2, 0)
    j(run_end)
    label(gt_end)
    movi(a2, 1)
    label(run_end)
    s32i(a5, a4, 68)  # r0 = r1
    mov(a5, a6)
    mov(a6, a7)
    mov(a7, a8)
    sub(a8, a10, a9)  # r4 = this run
    l32i(a13, a4, 72)
    addi(a13, a13, 1)
    s32i(a13, a4, 72)  # runs += 1
    s32i(a2, a4, 84)
    l32i(a15, a4, 44)
    bne(a2, a15, after_hit_tr)  # a light run (dark is "<= t" unless inverted)
    movi(a15, 5)
    blt(a13, a15, after_hit_tr)  # fewer than five runs yet
    l32i(a13, a4, 68)
    add(a13, a13, a5)
    add(a13, a13, a6)
    add(a13, a13, a7)
    add(a13, a13, a8)  # s = r0 + .. + r4
    movi(a15, 7)
    blt(a13, a15, after_hit_tr)
    l32i(a15, a4, 20)
    mull(a15, a15, a13)  # lim = s * tol
    slli(a2, a6, 3)
    sub(a2, a2, a6)
    sub(a2, a2, a13)
    sub(a2, a2, a13)
    sub(a2, a2, a13)
    abs_(a2, a2)  # |7 r2 - 3 s|
    movi(a12, 100)
    mull(a2, a2, a12)
    add(a12, a15, a15)
    add(a12, a12, a15)
    bge(a2, a12, after_hit_tr)  # the centre run first: not within tol
    s32i(a11, a4, 76)  # (a11 and a9 are scratch until restore)
    l32i(a2, a4, 68)
    slli(a12, a2, 3)
    sub(a2, a12, a2)
    sub(a2, a2, a13)
    abs_(a2, a2)  # e = |7 r0 - s|
    slli(a12, a5, 3)
    sub(a12, a12, a5)
    sub(a12, a12, a13)
    abs_(a12, a12)
    sub(a9, a12, a2)
    srai(a11, a9, 31)
    and_(a9, a9, a11)
    sub(a2, a12, a9)  # e = max(e, |7 r1 - s|)
    slli(a12, a7, 3)
    sub(a12, a12, a7)
    sub(a12, a12, a13)
    abs_(a12, a12)
    sub(a9, a12, a2)
    srai(a11, a9, 31)
    and_(a9, a9, a11)
    sub(a2, a12, a9)  # ... |7 r3 - s|
    slli(a12, a8, 3)
    sub(a12, a12, a8)
    sub(a12, a12, a13)
    abs_(a12, a12)
    sub(a9, a12, a2)
    srai(a11, a9, 31)
    and_(a9, a9, a11)
    sub(a2, a12, a9)  # ... |7 r4 - s|
    movi(a12, 100)
    mull(a2, a2, a12)
    bge(a2, a15, restore_tr)  # a one-module run not within tol
    l32i(a2, a4, 28)
    l32i(a12, a4, 24)
    bge(a2, a12, restore_tr)  # out is full
    l32i(a9, a4, 36)
    sub(a9, a10, a9)
    sub(a9, a9, a8)
    sub(a9, a9, a7)
    add(a9, a9, a9)
    sub(a9, a9, a6)  # 2 x centre = 2 (x - r4 - r3) - r2
    add(a12, a2, a2)
    add(a12, a12, a2)
    add(a12, a12, a12)
    l32i(a11, a4, 56)
    add(a11, a11, a12)  # &out[3 n]
    s16i(a9, a11, 0)
    l32i(a9, a4, 32)
    s16i(a9, a11, 2)
    s16i(a13, a11, 4)
    addi(a2, a2, 1)
    s32i(a2, a4, 28)  # n += 1
    label(restore)
    l32i(a11, a4, 76)
    label(after_hit)
    l8ui(a12, a3, 0)  # the block's threshold again (a12 was scratch)
    mov(a9, a10)  # the next run starts here
    beq(a10, a14, row_done_tr)
    l32i(a2, a4, 84)
    beqz(a2, gt_scan)  # a "<= t" run ended: the next is "> t"
    j(le_scan)
    # a row: from its first pixel, its first block
    label(ybody)
    l32i(a13, a4, 32)
    l32i(a15, a4, 4)
    mull(a13, a13, a15)
    l32i(a2, a4, 48)
    add(a13, a13, a2)
    s32i(a13, a4, 36)  # row pointer
    add(a14, a13, a15)  # rend
    l32i(a2, a4, 32)
    l32i(a15, a4, 64)
    ssr(a15)
    sra(a2, a2)
    l32i(a15, a4, 60)
    mull(a2, a2, a15)
    l32i(a15, a4, 52)
    add(a3, a15, a2)  # &thr[(y >> sh) * bw]
    l8ui(a12, a3, 0)
    l32i(a15, a4, 40)
    add(a11, a13, a15)
    sub(a2, a11, a14)
    srai(a15, a2, 31)
    and_(a2, a2, a15)
    add(a11, a14, a2)  # ie = min(row + bsz, rend)
    movi(a5, 0)
    movi(a6, 0)
    movi(a7, 0)
    movi(a8, 0)
    movi(a2, 0)
    s32i(a2, a4, 68)
    s32i(a2, a4, 72)
    mov(a10, a13)
    mov(a9, a13)
    l8ui(a13, a10, 0)
    bge(a12, a13, le_scan)
    j(gt_scan)
    label(row_done)
    l32i(a2, a4, 32)
    l32i(a15, a4, 16)
    add(a2, a2, a15)
    s32i(a2, a4, 32)  # y += step
    label(ytest)
    l32i(a2, a4, 32)
    l32i(a15, a4, 12)
    blt(a2, a15, ybody)
    l32i(a2, a4, 28)
