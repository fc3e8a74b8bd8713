"""A progress bar and status lines on stderr (a line per 10% when stderr is not a terminal)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def say(message: str, *, stream: TextIO | None = None) -> None:
    out = stream or sys.stderr
    out.write(message + "\n")
    out.flush()


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class Progress:
    def __init__(self, label: str, total: int, *, unit: str = "", stream: TextIO | None = None,
                 width: int = 30) -> None:
        self.label = label
        self.total = max(1, total)
        self.unit = unit
        self.stream = stream or sys.stderr
        self.width = width
        self.done = 0
        self.started = time.monotonic()
        self._tty = self.stream.isatty()
        self._shown_at = 0.0
        self._shown_tenth = -1

    def advance(self, n: int = 1) -> None:
        self.done = min(self.total, self.done + n)
        now = time.monotonic()
        if self._tty:
            if now - self._shown_at >= 0.1 or self.done == self.total:
                self._shown_at = now
                self.stream.write("\r" + self._line(now))
                self.stream.flush()
        elif (tenth := self.done * 10 // self.total) != self._shown_tenth:
            self._shown_tenth = tenth
            say(self._line(now), stream=self.stream)

    def finish(self, note: str = "") -> None:
        elapsed = time.monotonic() - self.started
        end = f"{self.label}: {self.done:,} {self.unit} in {_duration(elapsed)}{(' ' + note) if note else ''}"
        self.stream.write(("\r\033[K" if self._tty else "") + end + "\n")
        self.stream.flush()

    def _line(self, now: float) -> str:
        share = self.done / self.total
        filled = int(share * self.width)
        elapsed = now - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        return (f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {share:4.0%} "
                f"{self.done:,}/{self.total:,} {self.unit} {rate:,.0f}/s ETA {_duration(eta)}")
