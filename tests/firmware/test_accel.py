# Which hand-written Xtensa kernels the decoder takes into use (firmware/qr/accel.py): only
# those that pass their check, none after a check that never finished, none with /noaccel.
import os

from scanbridge_fw.qr import accel, kernels


def _dir(name):
    try:
        import tempfile
        d = tempfile.mkdtemp()
    except ImportError:  # MicroPython
        d = "/" + name
        try:
            os.mkdir(d)
        except OSError:
            pass
    return d + "/accel_check", d + "/noaccel"


class _Good:
    """Stand-ins with the hand-written kernels' calling convention, built on kernels.py."""

    @staticmethod
    def block_stats(img, avg, p):
        bs = 1 << p[2]
        kernels.block_stats(0, 0, img, p[0], p[1], p[2], p[3], (p[1] + bs - 1) // bs, p[4], avg)
        return 0

    @staticmethod
    def find_rows(img, thr, out, p):
        return kernels.find_rows(0, 0, img, thr, p[0], p[1], p[2], p[3], p[4], p[5], out, p[6])


class _BadRows(_Good):
    @staticmethod
    def find_rows(img, thr, out, p):  # one hit short when the buffer fills
        n = kernels.find_rows(0, 0, img, thr, p[0], p[1], p[2], p[3], p[4], p[5], out, p[6])
        return n - 1 if n == p[6] else n


def test_kernels_that_pass_their_check_are_used():
    mark, off = _dir("acc1")
    chosen, status = accel.select(_Good, mark, off)
    assert chosen["block_stats"] is _Good.block_stats and chosen["find_rows"] is _Good.find_rows
    assert status == "block_stats find_rows"
    assert not accel._exists(mark) and not accel._exists(off)


def test_a_kernel_that_fails_its_check_is_not_used():
    mark, off = _dir("acc2")
    chosen, status = accel.select(_BadRows, mark, off)
    assert chosen["block_stats"] is _BadRows.block_stats and chosen["find_rows"] is None
    assert "failed their check: find_rows" in status and not accel._exists(mark)


def test_a_check_that_never_finished_turns_them_off_for_good():
    mark, off = _dir("acc3")
    accel._write(mark, "checking\n")  # what a crash in the middle of the check leaves
    chosen, status = accel.select(_Good, mark, off)
    assert chosen == {"block_stats": None, "find_rows": None}
    assert status.startswith("off: the last boot's check did not finish")
    assert accel._exists(off) and not accel._exists(mark)
    chosen, status = accel.select(_Good, mark, off)  # and on the boots after it
    assert chosen == {"block_stats": None, "find_rows": None} and status.startswith("off: ")
    os.remove(off)  # a technician deletes it: the kernels are checked again
    chosen, status = accel.select(_Good, mark, off)
    assert status == "block_stats find_rows"


class _Raises(_Good):
    @staticmethod
    def block_stats(img, avg, p):
        raise MemoryError("no room for the test frame")


def test_a_check_that_raises_is_a_failed_check_and_an_unwritable_flash_no_error():
    mark, off = _dir("acc4")
    chosen, status = accel.select(_Raises, mark, off)
    assert chosen["block_stats"] is None and chosen["find_rows"] is _Raises.find_rows
    assert "failed their check: block_stats" in status
    # a marker that cannot be written (no such folder): the kernels are still checked and used
    chosen, status = accel.select(_Good, "/no/such/folder/accel_check", "/no/such/folder/noaccel")
    assert status == "block_stats find_rows"


def test_the_checks_hold_hits_and_refuse_a_wrong_block_stats():
    assert accel.check_block_stats(_Good.block_stats) and accel.check_find_rows(_Good.find_rows)

    def off_by_one(img, avg, p):
        _Good.block_stats(img, avg, p)
        avg[len(avg) - 1] ^= 1  # the last block, an edge block at every block size

    assert not accel.check_block_stats(off_by_one)
    assert accel.STATUS.startswith("off")  # no Xtensa module here
