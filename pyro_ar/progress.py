r"""Progress of long work: a bar on a terminal, plain periodic lines in a log otherwise.

A tqdm bar redraws itself many times a second; written to a file (a batch job's log) that is
hundreds of partial lines, and in a notebook without widgets tqdm warns with the path of its
installation. So a bar is drawn only when standard error is a terminal; otherwise a plain line
goes to the ``pyro_ar.progress`` logger (level INFO) at most every ``interval`` seconds and at
the end. The library configures no logging handler: the command line shows these lines, a user's
program shows them if it configures ``logging``.

Example:
    >>> with Progress(total=3, description="work", enabled=False) as progress:
    ...     for _ in range(3):
    ...         progress.update(epoch=1)
"""

from __future__ import annotations

__all__ = ["Progress"]

import logging
import sys
import time

logger = logging.getLogger("pyro_ar.progress")


class Progress:
    """Counts steps of long work and reports them.

    Arguments:
        total: The number of steps, or ``None`` if unknown.
        description: What is being done (``"training"``, ``"AIS"``).
        enabled: ``False`` reports nothing.
        unit: What a step is, for the bar.
        interval: Seconds between plain lines (not on a terminal).
        terminal: Draw a bar (default: whether standard error is a terminal).

    Example:
        >>> progress = Progress(3, "epochs", terminal=False)  # not a terminal: log lines
        >>> for epoch in range(3):
        ...     progress.update(1)
        >>> progress.close()
    """

    def __init__(
        self,
        total: int | None,
        description: str,
        enabled: bool = True,
        unit: str = "step",
        interval: float = 30.0,
        terminal: bool | None = None,
    ) -> None:
        self.total, self.description, self.enabled = total, description, enabled
        self.unit, self.interval = unit, interval
        self.count = 0
        self._status: dict = {}
        self._start = self._last = time.perf_counter()
        if terminal is None:
            terminal = _stderr_is_a_terminal()
        self._bar = None
        if enabled and terminal:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=description, unit=unit, mininterval=0.5)

    def update(self, steps: int = 1, **status) -> None:
        """Counts ``steps`` more steps; ``status`` (e.g. ``epoch=3, valid=88.1``) is shown with
        the count."""
        self.count += steps
        if status:
            self._status.update(status)
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(steps)
            if status:
                self._bar.set_postfix(self._status, refresh=False)
            return
        now = time.perf_counter()
        if now - self._last >= self.interval:
            self._last = now
            self._log()

    def set_status(self, **status) -> None:
        """Updates the status shown without counting a step."""
        self.update(0, **status)

    def _log(self) -> None:
        elapsed = time.perf_counter() - self._start
        done = f"{self.count}" if self.total is None else f"{self.count}/{self.total}"
        share = f" ({100 * self.count / self.total:.0f}%)" if self.total else ""
        status = " ".join(f"{key}={value}" for key, value in self._status.items())
        logger.info(
            "%s: %s %ss%s, %.1f s %s", self.description, done, self.unit, share, elapsed, status
        )

    def close(self) -> None:
        """Ends the bar, or writes the last plain line."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        else:
            self._log()
        self.enabled = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _stderr_is_a_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed streams
        return False
