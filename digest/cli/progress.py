"""Terminal progress: for `digest run`, a line per stage (feeds, episodes with their
minutes of audio, insights, messages); for `digest process`, a bar per episode,
bytes then audio seconds."""

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


LABELS = {"feeds": "Feeds", "episodes": "Episodes", "insights": "Insights", "messages": "Messages"}


class RunProgress:
    """One line per stage of a `digest run`, drawn live; a `digest.jobs.progress` watcher."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<9}"),
            BarColumn(bar_width=24),
            TextColumn("{task.fields[count]}"),
            TextColumn("[dim]{task.fields[note]}"),
            console=console,
            transient=False,
        )
        self.tasks: dict[str, TaskID] = {}
        self.minutes = 0.0

    def __enter__(self) -> RunProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def begin(self, stage: str, total: int | None) -> None:
        """A stage starts; `total` None: a count without a bar's end (rich's `update`
        cannot unset a total, so an unknown one is given when the task is added)."""
        if stage not in self.tasks:
            label = LABELS.get(stage, stage)
            self.tasks[stage] = self.progress.add_task(label, total=total, note="", count="")
        self.progress.update(self.tasks[stage], total=total, completed=0)
        self._count(stage)

    def advance(self, stage: str, amount: float = 1, note: str = "") -> None:
        if stage not in self.tasks:
            self.begin(stage, None)
        if stage == "episodes" and note.endswith("min of audio"):
            self.minutes += float(note.split()[0])
            note = f"{self.minutes:.0f} min of audio"
        self.progress.update(self.tasks[stage], advance=amount, note=note)
        self._count(stage)

    def _count(self, stage: str) -> None:
        task = self.progress.tasks[self.tasks[stage]]
        done = f"{task.completed:.0f}"
        count = f"{done}/{task.total:.0f}" if task.total is not None else done
        self.progress.update(self.tasks[stage], count=count)
