"""A progress bar for a lab run on a terminal: payments answered, simulated time and the
running success rate (at checkout). Silent when the output is not a terminal (tests, CI,
pipes) or when the figures go out as JSON."""

from __future__ import annotations

from typing import Never, TextIO

from tqdm import tqdm


class ProgressBar:
    """Called after each checkout (lab/runner.py `Progress`); `close` when the run ends."""

    def __init__(
        self,
        total: int,
        label: str,
        stream: TextIO,
        *,
        enabled: bool = True,
        every_s: float = 0.25,
    ) -> None:
        self.enabled = enabled and stream.isatty()
        self._bar: tqdm[Never] | None = None  # no iterable: counts only
        if self.enabled:
            self._bar = tqdm(
                total=total,
                desc=label,
                unit="pay",
                file=stream,
                dynamic_ncols=True,
                mininterval=every_s,
                leave=False,
            )
        self._shown = 0

    def __call__(self, done: int, succeeded: int, simulated_s: float) -> None:
        if self._bar is None:
            return
        if done % 200 == 0:  # the postfix costs more than the count: not on every payment
            minutes, seconds = divmod(int(simulated_s), 60)
            self._bar.set_postfix_str(
                f"simulated {minutes:d}:{seconds:02d}, success {succeeded / done:.1%}",
                refresh=False,
            )
        self._bar.update(done - self._shown)  # redraws at most every `every_s`
        self._shown = done

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
