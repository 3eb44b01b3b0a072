"""`rag ingest --watch`: the store follows a folder (new, changed, deleted files), one line per
change, acting only once files hold still; a folder that goes away removes nothing (issue #16)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from rag import watch
from rag.pipeline import Rag
from rag.settings import PROJECT_ROOT


def note(folder, name: str, title: str, body: str = "Plain words about nothing in particular.") -> None:
    (folder / name).write_text(f"# {title}\n\n{body}\n", encoding="utf-8")


class Script:
    """A `sleep` that edits the folder at the given rounds and stops the watch after the last."""

    def __init__(self, *edits):
        self.edits = list(edits)
        self.rounds = 0

    def sleep(self, seconds: float) -> None:
        if seconds == watch.WatchPlan([]).interval_s:
            self.rounds += 1
            if self.edits:
                self.edits.pop(0)()

    def stop(self) -> bool:
        return not self.edits and self.rounds > 0


def titles(rag: Rag) -> set[str]:
    return {p.title for p in rag.papers()}


def test_the_store_follows_new_changed_and_deleted_files(fake_rag, tmp_path):
    folder = tmp_path / "papers"
    folder.mkdir()
    note(folder, "a.md", "Alpha Notes")
    script = Script(
        lambda: note(folder, "b.md", "Beta Notes"),
        lambda: note(folder, "a.md", "Alpha Notes", "Rewritten with new findings about alpha particles."),
        lambda: (folder / "b.md").unlink(),
    )
    lines: list[str] = []
    watch.watch(fake_rag, watch.WatchPlan([folder], stop=script.stop), lines.append, sleep=script.sleep)
    changed = [line for line in lines if line.split(":")[0] in ("new", "changed", "deleted")]
    assert changed == [f"new: {folder / 'b.md'}", f"changed: {folder / 'a.md'}", f"deleted: {folder / 'b.md'}"]
    summaries = [line for line in lines if " papers: " in line]
    assert len(summaries) == 4 and "1 added" in summaries[1] and "1 updated" in summaries[2] and "1 removed" in summaries[3]
    assert titles(fake_rag) == {"Alpha Notes"}


def test_a_folder_that_goes_away_removes_nothing(fake_rag, tmp_path):
    folder = tmp_path / "papers"
    folder.mkdir()
    note(folder, "a.md", "Alpha Notes")
    gone = tmp_path / "elsewhere"
    script = Script(lambda: folder.rename(gone), lambda: None)
    lines: list[str] = []
    watch.watch(fake_rag, watch.WatchPlan([folder], stop=script.stop), lines.append, sleep=script.sleep)
    assert any(line.startswith("warning:") and "waiting for it to come back" in line for line in lines)
    assert titles(fake_rag) == {"Alpha Notes"}  # nothing pruned for a folder that is merely gone


def test_a_file_still_being_written_is_read_once_it_holds_still(fake_rag, tmp_path):
    folder = tmp_path / "papers"
    folder.mkdir()
    note(folder, "a.md", "Alpha Notes")
    growing = folder / "c.md"
    writes = iter(["# Gamma Notes\n\nPart one.", "# Gamma Notes\n\nPart one. Part two."])  # one per sleep, then still

    def sleep(_seconds):
        text = next(writes, None)
        if text:
            growing.write_text(text, encoding="utf-8")

    rounds = iter([False, True])
    lines: list[str] = []
    watch.watch(fake_rag, watch.WatchPlan([folder], stop=lambda: next(rounds)), lines.append, sleep=sleep)
    assert [line for line in lines if line.startswith("new: ")] == [f"new: {growing}"]
    assert len([line for line in lines if " papers: " in line]) == 2  # the first ingest, then one for the settled file
    gamma = next(p for p in fake_rag.papers() if p.title == "Gamma Notes")
    assert "Part two." in fake_rag.store.paper_texts([gamma.paper_id])[gamma.paper_id]


def test_rag_ingest_watch_follows_a_folder_and_stops_cleanly_on_ctrl_c(tmp_path):
    folder = tmp_path / "papers"
    folder.mkdir()
    note(folder, "a.md", "Alpha Notes")
    env = {**os.environ, "RAG_DATA_DIR": str(tmp_path / "data"), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "rag", "ingest", str(folder), "--watch"], cwd=PROJECT_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line.strip())
            if " papers: " in line and len([x for x in lines if " papers: " in x]) == 1:
                note(folder, "b.md", "Beta Notes")
            if line.startswith("new: "):
                break
        assert lines[0].startswith("watching ") and f"new: {folder / 'b.md'}" in lines
        assert " papers: " in proc.stdout.readline()  # the ingest that follows the change
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0 and out.strip().endswith("stopped") and "Traceback" not in err
