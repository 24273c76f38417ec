"""Terminal progress for `digest process`: a bar per episode, bytes then audio seconds."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from digest.jobs import Hooks


class ProcessProgress:
    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )

    def __enter__(self) -> ProcessProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def hooks(self, title: str) -> Hooks:
        task: TaskID = self.progress.add_task(title[:40], total=None, detail="")

        def downloaded(done: int, total: int | None) -> None:
            size = f"{done / 1e6:.1f}" + (f"/{total / 1e6:.1f}" if total else "")
            self.progress.update(task, completed=done, total=total, detail=f"{size} MB")

        def transcribing(done: float, total: float) -> None:
            done = min(done, total) if total else done  # the last segment may end past the probe
            self.progress.update(
                task, completed=done, total=total or None, detail=f"{done:.0f}/{total:.0f} s audio"
            )

        return Hooks(downloaded=downloaded, transcribing=transcribing)
