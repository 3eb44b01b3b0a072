"""Progress bars on stderr for long work, as a plain (done, total) callback so the library
never depends on a terminal."""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

Callback = Callable[[int, int], None]


@contextlib.contextmanager
def bar(description: str, unit: str, total: int | None = None, disable: bool = False) -> Iterator[Callback]:
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    count = DownloadColumn() if unit == "bytes" else MofNCompleteColumn()
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), count, TimeRemainingColumn(),
        console=Console(stderr=True), disable=disable, transient=False,
    )
    task = progress.add_task(description, total=total)

    def update(done: int, new_total: int) -> None:
        progress.update(task, completed=done, total=new_total)

    with progress:
        yield update
