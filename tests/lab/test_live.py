from rich.console import Console

from prunequant.lab.live import LineLog, LiveDisplay, Observer, make_observer
from prunequant.progress import progress_active, set_progress
from prunequant.tasks import default_task


def test_without_a_terminal_the_observer_writes_plain_lines():
    observer = make_observer("run", True, default_task().metric())  # pytest's stderr is not a TTY
    assert type(observer) is LineLog and observer.callbacks() == []


def test_disabled_progress_is_silent():
    observer = make_observer("run", False, default_task().metric())
    assert type(observer) is Observer and observer.callbacks() == []


def test_the_live_display_shows_trials_and_the_best_so_far(make_row):
    set_progress(True)
    display = LiveDisplay("prunequant run demo", default_task().metric())
    try:
        assert not progress_active()  # the Trainer's own bars step aside while the display is up
        row = make_row("post_prune", 0.9, top1=0.9125, file_bytes=2048, speedup=1.5)
        display.stage_started("post_prune", [])
        display.trial_finished(row, best=row)
        console = Console(record=True, width=120)
        console.print(display._render())
        text = console.export_text()
    finally:
        display.close()
    assert "prunequant run demo - post_prune (0 trials)" in text
    assert "post_prune 0" in text and "91.25" in text and "2.0" in text and "1.50" in text
    assert "best so far post_prune 0: top1 91.25%, 2.0 KB, 1.50x speed" in text
    assert "top1 ↑" in text
    set_progress(True)
