"""Progress on long work (training folds, model search, batch chunks), with elapsed time and an ETA.

One display for every command: anything that reports ``progress(stage, done, total)`` (the
``domain.training.Progress`` signature) can be shown by it. Written to standard error, so standard
output stays clean for ``--json`` and pipes; on a terminal one line is redrawn in place, elsewhere
(CI logs, files) a line is printed at most every 10% so logs stay short.

    show = ProgressDisplay()
    show("cross-validation", 2, 5)   # cross-validation   [########............] 2/5  12.4 s, about 18 s left
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


def format_seconds(seconds: float) -> str:
    """``4.2 s``, ``3 min 05 s``, ``1 h 02 min``: short and unambiguous."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class ProgressDisplay:
    """A ``(stage, done, total)`` callable drawing a bar, the stage's elapsed time and an ETA.

    The ETA assumes the remaining steps of a stage take as long as the ones done so far (folds and
    chunks are alike); it is left out until one step is done.
    """

    def __init__(
        self, stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic, width: int = 20
    ) -> None:
        self.stream = stream
        self.clock = clock
        self.width = width
        self._stage: str | None = None
        self._started = 0.0
        self._last_done = -1
        self._last_printed_tenth = -1
        self._open_line = False

    @property
    def _out(self) -> TextIO:
        return self.stream or sys.stderr

    def _interactive(self) -> bool:
        isatty = getattr(self._out, "isatty", None)
        return bool(isatty and isatty())

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = self.clock()
        if stage != self._stage or done < self._last_done:
            self._end_line()
            self._stage, self._started, self._last_printed_tenth = stage, now, -1
        self._last_done = done
        total = max(total, 1)
        finished = done >= total
        line = self.line(stage, done, total, now - self._started)
        if self._interactive():
            self._out.write("\r" + line + "\033[K")
            self._open_line = not finished
            if finished:
                self._out.write("\n")
        else:
            tenth = min(10, 10 * done // total)
            if tenth == self._last_printed_tenth:
                return
            self._last_printed_tenth = tenth
            self._out.write(line + "\n")
        self._out.flush()

    def line(self, stage: str, done: int, total: int, elapsed: float) -> str:
        filled = int(self.width * min(done, total) / total)
        bar = "#" * filled + "." * (self.width - filled)
        text = f"{stage:<18} [{bar}] {done}/{total}  {format_seconds(elapsed)}"
        if done >= total:
            return text + ", done"
        if done > 0:
            text += f", about {format_seconds(elapsed / done * (total - done))} left"
        return text

    def close(self) -> None:
        """End a line left open by an unfinished stage (the work stopped early)."""
        self._end_line()
        self._stage, self._last_done = None, -1

    def _end_line(self) -> None:
        if self._open_line:
            self._out.write("\n")
            self._open_line = False
