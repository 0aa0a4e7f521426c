"""What the virtual camera sees: frames from image files or generated scenes (a phone showing a
payment code). A generated frame remembers the payload it shows (`payloads`), so tests can
compare what the firmware's decoder read with what was shown; the decoder never sees it."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

WIDTH, HEIGHT = 320, 240  # QVGA, what the device uses


@dataclass
class Frame:
    gray: bytes
    width: int
    height: int
    payloads: list = field(default_factory=list)  # what the scene shows (for checking reads)
    label: str = ""


def blank(width=WIDTH, height=HEIGHT, level=128) -> Frame:
    return Frame(bytes([level]) * (width * height), width, height, [], "blank")


def render(payload: bytes, width=WIDTH, height=HEIGHT) -> Frame:
    """A phone showing `payload` as a QR code: the scene generator when it is installed, else a
    clean code drawn with segno (the simplest picture a decoder can be shown)."""
    try:
        from scanbridge_tools import scenes
    except ImportError:
        scenes = None
    if scenes is not None:
        gray, w, h = scenes.render_scene(payload, width, height)
        return Frame(bytes(gray), w, h, [payload], "scene")
    return _segno_frame(payload, width, height)


def _segno_frame(payload: bytes, width: int, height: int) -> Frame:
    import io

    import segno
    from PIL import Image
    qr = segno.make(payload, error="m", micro=False)
    buf = io.BytesIO()
    scale = max(1, int(min(width, height) * 0.8) // (qr.symbol_size(border=4)[0]))
    qr.save(buf, kind="png", scale=scale, border=4)
    img = Image.open(io.BytesIO(buf.getvalue())).convert("L")
    canvas = Image.new("L", (width, height), 200)
    canvas.paste(img, ((width - img.width) // 2, (height - img.height) // 2))
    return Frame(canvas.tobytes(), width, height, [payload], "segno")


def load_image(path: str | Path, width=WIDTH, height=HEIGHT) -> Frame:
    """An image file as the camera would deliver it: grayscale, scaled down to fit QVGA."""
    from PIL import Image
    img = Image.open(path).convert("L")
    img.thumbnail((width, height))
    canvas = Image.new("L", (width, height), 128)
    canvas.paste(img, ((width - img.width) // 2, (height - img.height) // 2))
    return Frame(canvas.tobytes(), width, height, [], Path(path).name)


class CodeStream:
    """Shows each payload for `hold` frames, then `gap` frames of nothing (the phone leaves the
    view), like customers in a queue. After the last one it shows nothing, or starts over."""

    def __init__(self, payloads: Iterable[bytes], hold=3, gap=2, repeat=False):
        self.payloads = list(payloads)
        self.hold = hold
        self.gap = gap
        self.repeat = repeat
        self._blank = blank()
        self.shown = 0  # codes put in front of the camera so far

    def __iter__(self) -> Iterator[Frame]:
        while True:
            for p in self.payloads:
                f = render(p)
                self.shown += 1
                for _ in range(self.hold):
                    yield f
                for _ in range(self.gap):
                    yield self._blank
            if not self.repeat:
                break
        while True:
            yield self._blank


class ImageStream(CodeStream):
    def __init__(self, paths: Iterable[str | Path], hold=3, gap=2, repeat=False):
        super().__init__([], hold, gap, repeat)
        self.frames = [load_image(p) for p in paths]

    def __iter__(self) -> Iterator[Frame]:
        while True:
            for f in self.frames:
                self.shown += 1
                for _ in range(self.hold):
                    yield f
                for _ in range(self.gap):
                    yield self._blank
            if not self.repeat:
                break
        while True:
            yield self._blank


class QueuedStream:
    """Frames pushed by the caller (tests, demo): blank while nothing is queued."""

    def __init__(self, hold=3, gap=2):
        import queue
        self.hold = hold
        self.gap = gap
        self._q: queue.Queue = queue.Queue()
        self._blank = blank()
        self.shown = 0

    def show(self, payload: bytes | Frame) -> None:
        self._q.put(payload)

    def __iter__(self) -> Iterator[Frame]:
        import queue
        while True:
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                yield self._blank
                continue
            f = item if isinstance(item, Frame) else render(item)
            self.shown += 1
            for _ in range(self.hold):
                yield f
            for _ in range(self.gap):
                yield self._blank
