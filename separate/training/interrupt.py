"""Stopping a run on SIGINT (Ctrl-C) or SIGTERM without losing its work.

While a :class:`StopSignals` block is active (main thread only), the first SIGINT or SIGTERM only
records its number and gives the previous handlers back, so a second one acts at once. The training
loop agrees on the flag across processes at every step (the state save is collective), saves the
state and raises :class:`TrainingInterrupted`.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from separate.errors import SeparateError

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(SeparateError):
    """A signal stopped the run after its state was saved; ``exit_code`` is 128 + the signal number."""

    def __init__(self, signal_number: int, state: str | Path) -> None:
        self.signal_number, self.state = int(signal_number), Path(state)
        super().__init__(f"interrupted: state saved to {self.state}; continue with --resume")

    @property
    def exit_code(self) -> int:
        return 128 + self.signal_number


class StopSignals:
    """Context manager: ``received`` becomes the number of the first SIGINT/SIGTERM (0 until then)."""

    def __init__(self) -> None:
        self.received = 0
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for number in SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._restore()

    def _handle(self, number: int, frame: FrameType | None) -> None:
        self.received = self.received or number
        self._restore()

    def _restore(self) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}
