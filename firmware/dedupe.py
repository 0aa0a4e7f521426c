# Suppresses repeats of the same code: a phone held in front of the camera is read many times a
# second, but the merchant wants one scan. A code is suppressed while it was last SEEN less than
# window_ms ago, so it must leave the view for window_ms before it counts again.
from scanbridge_fw.compat import ticks_diff


class Dedupe:
    def __init__(self, window_ms, size=8):
        self.window_ms = window_ms
        self.size = size
        self._codes = []  # [code bytes, last seen ms], most recent last; bounded by size
        self.suppressed = 0

    def fresh(self, code, now_ms):
        """True when `code` should be sent (not seen within the window). Records the sighting."""
        for i in range(len(self._codes)):
            entry = self._codes[i]
            if entry[0] == code:
                recent = ticks_diff(now_ms, entry[1]) < self.window_ms
                entry[1] = now_ms
                self._codes.pop(i)
                self._codes.append(entry)
                if recent:
                    self.suppressed += 1
                    return False
                return True
        self._codes.append([bytes(code), now_ms])
        if len(self._codes) > self.size:
            self._codes.pop(0)
        return True

    def forget(self, code):
        """Let `code` through next time (e.g. it could not be sent)."""
        for i in range(len(self._codes)):
            if self._codes[i][0] == code:
                self._codes.pop(i)
                return

    def clear(self):
        self._codes = []
