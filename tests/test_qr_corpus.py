"""Our QR decoder on the shared corpus (../shared/corpus), as `scanbridge bench decode --fit
320x240` measures it: every image shrunk to fit 320x240, decoded at 0/90/180/270 degrees, exact
match of the .txt.  The floors are figures this decoder has reached (docs/BENCHMARKS.md); the
anchors measured on the same corpus are zxing-cpp 63.8 % / 83.3 %, zbar 55.8 % / 65.4 %,
quirc 33.3 % / 26.8 % (counter-dev / zxing-qr)."""
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpus"
# (folder, images sampled, floor as a fraction of decodes at four rotations)
CASES = [("counter-dev", 15, 0.60), ("zxing-qr", 28, 0.85)]


def _items(folder):
    from scanbridge_tools.bench import decode as bench
    return bench.find_images(str(CORPUS / folder))


@pytest.mark.slow
@pytest.mark.timeout(900)  # 60 full-effort decodes of hard scenes in CPython: minutes on a busy 2-core box
@pytest.mark.parametrize("folder,count,floor", CASES)
def test_corpus_floor(folder, count, floor):
    if not (CORPUS / folder).is_dir():
        pytest.skip("shared corpus not present")
    from scanbridge_tools.bench import decode as bench
    from scanbridge_fw.qr import decode
    items = _items(folder)
    items = items[::max(1, len(items) // count)][:count]
    ok = total = wrong = 0
    for item in items:
        path, expected = item[1], item[2]
        for _deg, gray, w, h in bench.rotated_frames(bench.load_gray(path, (320, 240))):
            got = decode(gray, w, h)
            total += 1
            texts = [bench.as_text(p) for p in got]
            ok += expected in texts
            wrong += any(t != expected for t in texts)
    assert wrong == 0, "%d misreads" % wrong
    assert ok / total >= floor, "%s: %d/%d = %.1f %% below the floor %.0f %%" % (
        folder, ok, total, 100 * ok / total, 100 * floor)
