"""The one progress display: elapsed time and an ETA per stage, redrawn on a terminal, sparse in logs."""

from __future__ import annotations

import io

from churnguard.entrypoints.progress import ProgressDisplay, format_seconds


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_eta_is_the_mean_step_time_times_the_steps_left():
    now = [100.0]
    out = Tty()
    show = ProgressDisplay(out, clock=lambda: now[0])
    show("cross-validation", 0, 5)
    assert "about" not in out.getvalue()  # nothing done yet: no guess
    now[0] += 8.0
    show("cross-validation", 2, 5)
    assert "2/5  8.0 s, about 12.0 s left" in out.getvalue()
    now[0] += 12.0
    show("cross-validation", 5, 5)
    assert out.getvalue().endswith("5/5  20.0 s, done\x1b[K\n")


def test_a_new_stage_restarts_the_clock_on_a_new_line():
    now = [0.0]
    out = Tty()
    show = ProgressDisplay(out, clock=lambda: now[0])
    show("cross-validation", 1, 3)
    now[0] = 50.0
    show("final model", 0, 1)
    now[0] = 53.0
    show("final model", 1, 1)
    lines = out.getvalue().split("\n")
    assert lines[0].startswith("\rcross-validation") and "final model" in lines[1] and "3.0 s, done" in lines[1]


def test_outside_a_terminal_a_line_is_written_at_most_every_tenth():
    out = io.StringIO()
    show = ProgressDisplay(out, clock=lambda: 0.0)
    for i in range(101):
        show("scoring", i, 100)
    show("scoring", 100, 100)  # a repeated last report prints nothing more
    lines = out.getvalue().splitlines()
    assert len(lines) == 11 and "\r" not in out.getvalue() and lines[-1].endswith("done")


def test_close_ends_an_unfinished_line():
    out = Tty()
    show = ProgressDisplay(out, clock=lambda: 0.0)
    show("scoring chunks", 1, 4)
    show.close()
    assert out.getvalue().endswith("\n")


def test_seconds_read_naturally():
    assert [format_seconds(s) for s in (4.24, 65, 3725)] == ["4.2 s", "1 min 05 s", "1 h 02 min"]
