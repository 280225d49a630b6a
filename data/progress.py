"""Progress of long stages (a frozen pass over 15M tokens takes an hour), on a terminal and in logs alike.

On a terminal, a tqdm bar on stderr. Elsewhere (a job's log file, a pipe) a bar is either
nothing (tqdm disables itself) or thousands of carriage returns; there the stage prints one plain
line every ~10 seconds or every 10% of the work, whichever comes first, but never two within a
second (so a sub-second stage, such as one epoch of head training, stays silent); a stage that
printed a line prints its 100% line too:

    train states: 2,310,144/12,518,400 tok (18%), 4,105 tok/s, ETA 0:41:26

Those lines go to stdout, flushed, next to the run's other status lines, so that stderr keeps
carrying only warnings and the one-line errors.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, Iterable, Iterator, TextIO, TypeVar

from tqdm import tqdm

T = TypeVar("T")


class Progress:
    """Counts done units of `total`; a bar on a terminal, else a plain line every `every_seconds` or 10%
    (at least `min_seconds` apart).

    `terminal` (default: is stderr a terminal?), `stream` (default stdout) and `clock` are
    injectable so tests can run it with a fake clock and no sleeping.
    """

    def __init__(self, total: int, desc: str, unit: str = "it", *, terminal: bool | None = None,
                 stream: TextIO | None = None, clock: Callable[[], float] | None = None,
                 every_seconds: float = 10.0, every_fraction: float = 0.1, min_seconds: float = 1.0) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.done = 0
        self.postfix = ""
        if terminal is None:
            terminal = sys.stderr.isatty()
        self.bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=True, leave=False) if terminal else None
        self.stream = stream
        self.clock = clock or time.monotonic
        self.every_seconds, self.steps, self.min_seconds = every_seconds, round(1 / every_fraction), min_seconds
        self.started = self.last_line = self.clock()
        self.last_step = 0  # how many of the `steps` equal parts of the work the last line had reached

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = self.clock()
        step = self.done * self.steps // self.total if self.total else 0
        since = now - self.last_line
        closing = self.done >= self.total and self.last_step > 0  # a stage that printed lines also prints 100%
        if since >= self.every_seconds or step > self.last_step and (since >= self.min_seconds or closing):
            self.last_step, self.last_line = step, now
            print(self.line(now), file=self.stream or sys.stdout, flush=True)

    def iterate(self, items: Iterable[T]) -> Iterator[T]:
        """Yield `items`, counting one unit as each is finished (tqdm(iterable)'s place); closes at the end."""
        try:
            for item in items:
                yield item
                self.update()
        finally:
            self.close()

    def set_postfix(self, **values: object) -> None:
        """Values shown after the counts (a running loss, say), as tqdm's `set_postfix`."""
        if self.bar is not None:
            self.bar.set_postfix(**values)
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def line(self, now: float) -> str:
        """'desc: done/total unit (p%), rate unit/s, ETA h:mm:ss[, postfix]'."""
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        text = f"{self.desc}: {self.done:,}/{self.total:,} {self.unit}"
        if self.total:
            text += f" ({100 * self.done / self.total:.0f}%)"
        text += f", {rate:,.0f} {self.unit}/s" if rate >= 100 else f", {rate:.2f} {self.unit}/s"
        if rate > 0 and self.total:
            text += f", ETA {clock_time(max(self.total - self.done, 0) / rate)}"
        return text + (f", {self.postfix}" if self.postfix else "")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def clock_time(seconds: float) -> str:
    """Seconds as h:mm:ss."""
    seconds = round(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
