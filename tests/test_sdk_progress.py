"""The stderr progress bar and status line."""
from __future__ import annotations

import io
import threading

from s2s_aws.progress import ProgressBar, StatusLine, human_bytes


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_counts_bytes_from_many_threads() -> None:
    out = io.StringIO()
    bar = ProgressBar(4000, "upload", stream=out)
    threads = [threading.Thread(target=lambda: [bar(1) for _ in range(1000)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bar.close()
    assert bar.done == 4000
    assert out.getvalue().strip().endswith("100.0% 3.9 KiB/3.9 KiB")
    assert out.getvalue().count("\n") == 1  # not a terminal: only the final line


def test_progress_bar_redraws_in_place_on_a_terminal() -> None:
    out = TTY()
    bar = ProgressBar(100, "up", stream=out, min_interval=0)
    bar(50)
    assert out.getvalue().startswith("\rup [") and "50.0%" in out.getvalue()


def test_disabled_progress_writes_nothing() -> None:
    out = io.StringIO()
    bar = ProgressBar(10, stream=out, enabled=False)
    bar(10)
    bar.close()
    line = StatusLine("job", stream=out, enabled=False)
    line.update("InProgress")
    line.close("Completed")
    assert out.getvalue() == ""


def test_status_line_prints_only_changes_off_terminal() -> None:
    out = io.StringIO()
    line = StatusLine("training job j", stream=out)
    for status in ("InProgress - Starting", "InProgress - Starting", "InProgress - Training"):
        line.update(status)
    line.close("Completed")
    lines = out.getvalue().splitlines()
    assert [x.split(" (")[0] for x in lines] == ["training job j: InProgress - Starting",
                                                  "training job j: InProgress - Training"] + ["training job j: Completed"]


def test_human_bytes() -> None:
    assert human_bytes(512) == "512 B"
    assert human_bytes(3 * 1024 * 1024) == "3.0 MiB"
