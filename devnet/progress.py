"""What the demo shows while it works: a step list, then a live status panel.

On a terminal (``rich``): each step runs under a spinner with its elapsed time and leaves one
line behind (a tick, what it did, how long it took); the status panel is redrawn in place. Not
on a terminal (CI, a pipe, a log file): one plain line per finished step, and a status line only
when something in it changed. Both write to standard output.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table


@dataclass
class SiteRow:
    """One site's line in the status panel."""

    name: str
    state: str
    """``fresh``, ``stale`` or ``flagged``"""
    landed: int
    member: bool
    note: str = ""


@dataclass
class Status:
    """Everything the status panel shows."""

    sites: list[SiteRow] = field(default_factory=list)
    committee: str = "-"
    score: str = "-"
    orders: int = 0
    batches: int = 0
    block: int = 0
    live: bool = True

    def line(self) -> str:
        """The plain one-line form (no block number: it would make every line new)."""
        sites = " ".join(f"{s.name}={s.state}" for s in self.sites)
        return (
            f"status: {sites} | committee {self.committee} | {self.score} | "
            f"{self.orders} orders acknowledged | {self.batches} batches committed | "
            f"{'live' if self.live else 'stopped'}"
        )


class Step:
    """A running step: ``done`` sets what the finished line says."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.result = ""

    def done(self, result: str) -> None:
        self.result = result


class ProgressView:
    """The demo's console: steps, notes, the status panel."""

    def __init__(self, out: IO[str] | None = None, tty: bool | None = None) -> None:
        stream = out or sys.stdout
        self.tty = stream.isatty() if tty is None else tty
        self.console = Console(file=stream, force_terminal=self.tty, highlight=False)
        self.started = time.monotonic()
        self._live: Live | None = None
        self._last_line = ""

    def _plain(self, text: str) -> None:
        self.console.print(text, markup=False, soft_wrap=True)

    @contextmanager
    def step(self, title: str) -> Iterator[Step]:
        """Run a step: a spinner with the elapsed time on a terminal, one line when it ends."""
        step = Step(title)
        t0 = time.monotonic()
        if self.tty:
            bar = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            try:
                with bar:
                    bar.add_task(f"{title} ...")
                    yield step
            except BaseException:
                self.console.print(f"[red]x[/red] {escape(title)} (failed)", highlight=False)
                raise
            self.console.print(
                f"[green]\u2713[/green] {escape(title):<16} {escape(step.result)}  "
                f"[dim]{time.monotonic() - t0:.1f} s[/dim]",
                highlight=False,
            )
        else:
            yield step
            self._plain(f"[{time.monotonic() - self.started:6.1f} s] {title:<16} {step.result}")

    def note(self, text: str) -> None:
        """A line of its own (a hint, a command, a warning)."""
        self._plain(text)

    def block(self, text: str) -> None:
        """Several lines kept as they are (a table)."""
        self._plain(text)

    # ------------------------------------------------------------ status panel

    def _table(self, status: Status) -> Table:
        table = Table(
            title=f"devnet status at block {status.block}  ({time.strftime('%H:%M:%S')})",
            title_justify="left",
        )
        for column in ("site", "state", "proofs landed", "committee", "note"):
            table.add_column(column)
        colours = {"fresh": "green", "stale": "yellow", "flagged": "red"}
        for s in status.sites:
            colour = colours.get(s.state, "white")
            table.add_row(
                escape(s.name),
                f"[{colour}]{s.state}[/{colour}]",
                str(s.landed),
                "member" if s.member else "-",
                escape(s.note),
            )
        table.caption = (
            f"committee {status.committee}  |  {status.score}  |  "
            f"{status.orders} orders acknowledged  |  {status.batches} batches committed  |  "
            f"{'live' if status.live else 'stopped'}  |  Ctrl-C stops everything"
        )
        table.caption_justify = "left"
        return table

    def show(self, status: Status) -> None:
        """Redraw the panel in place (terminal), or print its line if it changed (plain)."""
        if self.tty:
            if self._live is None:
                self._live = Live(
                    self._table(status), console=self.console, auto_refresh=False, transient=False
                )
                self._live.start()
            self._live.update(self._table(status), refresh=True)
            return
        line = status.line()
        if line != self._last_line:
            self._last_line = line
            self._plain(f"[{time.monotonic() - self.started:6.1f} s] {line}")

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
