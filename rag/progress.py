"""Progress bars on stderr for long work, as a plain (done, total) callback so the library
never depends on a terminal. The bar appears only once there is work to show."""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

Callback = Callable[[int, int], None]


@contextlib.contextmanager
def bar(description: str, unit: str, disable: bool = False) -> Iterator[Callback]:
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    count = DownloadColumn() if unit == "bytes" else MofNCompleteColumn()
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), count, TimeRemainingColumn(),
        console=Console(stderr=True), disable=disable,
    )
    task = None

    def update(done: int, total: int) -> None:
        nonlocal task
        if task is None:
            if total <= 0:
                return
            progress.start()
            task = progress.add_task(description, total=total)
        progress.update(task, completed=done, total=total)

    try:
        yield update
    finally:
        if task is not None:
            progress.stop()
