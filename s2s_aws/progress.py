"""A tiny stderr progress bar and status line (no dependencies).

On a terminal the line is redrawn in place; elsewhere (CI logs) only changes of status and the
final line are printed, so logs stay short. ``enabled=False`` makes every call a no-op.
"""
from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

__all__ = ["ProgressBar", "StatusLine", "human_bytes"]


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


class ProgressBar:
    """Byte progress for uploads; callable with a byte increment (boto3 transfer ``Callback``).

    Thread-safe: boto3 calls the callback from its transfer threads.
    """

    def __init__(self, total: int, label: str = "", *, stream: TextIO | None = None,
                 enabled: bool = True, width: int = 28, min_interval: float = 0.1):
        self.total = max(int(total), 0)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.width = width
        self.done = 0
        self._lock = threading.Lock()
        self._last = 0.0
        self._min_interval = min_interval
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def __call__(self, increment: int) -> None:
        with self._lock:
            self.done += int(increment)
            now = time.monotonic()
            if self.enabled and self._tty and now - self._last >= self._min_interval:
                self._last = now
                self._draw(end="")

    def _draw(self, end: str) -> None:
        frac = min(1.0, self.done / self.total) if self.total else 1.0
        filled = int(frac * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        line = f"{self.label} [{bar}] {frac * 100:5.1f}% {human_bytes(self.done)}/{human_bytes(self.total)}"
        prefix = "\r" if self._tty else ""
        self.stream.write(prefix + line + end)
        self.stream.flush()

    def close(self) -> None:
        """Print the final state and a newline."""
        if self.enabled:
            with self._lock:
                self._draw(end="\n")

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StatusLine:
    """A spinner with a status text and elapsed time for waits: ``update("InProgress - Training")``."""

    _FRAMES = "|/-\\"

    def __init__(self, label: str, *, stream: TextIO | None = None, enabled: bool = True):
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self._start = time.monotonic()
        self._frame = 0
        self._last_text: str | None = None
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._open = False

    def update(self, text: str) -> None:
        if not self.enabled:
            return
        elapsed = int(time.monotonic() - self._start)
        if self._tty:
            self._frame = (self._frame + 1) % len(self._FRAMES)
            self.stream.write(f"\r{self._FRAMES[self._frame]} {self.label}: {text} ({elapsed}s)\x1b[K")
            self._open = True
        elif text != self._last_text:
            self.stream.write(f"{self.label}: {text} ({elapsed}s)\n")
        self._last_text = text
        self.stream.flush()

    def close(self, final: str | None = None) -> None:
        if not self.enabled:
            return
        if self._tty and self._open:
            self.stream.write("\n")
            self._open = False
        if final is not None and final != self._last_text:
            self.stream.write(f"{self.label}: {final}\n")
        self.stream.flush()

    def interrupt(self) -> None:
        """End the in-place line (before printing something else)."""
        if self.enabled and self._tty and self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False
