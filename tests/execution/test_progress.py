import io

from sweeps.execution.progress import ProgressLine


def test_the_progress_display_is_plain_lines_with_counts_and_the_best_so_far():
    out = io.StringIO()
    line = ProgressLine(metric="test/acc_rare", mode="max", total=4, stream=out, interval=0)
    line.update({"PENDING": 2, "RUNNING": 2})
    line.offer("t1", 10, 0.4)
    line.offer("t2", 20, 0.9)
    line.offer("t1", 30, 0.5)
    line.update({"RUNNING": 1, "TERMINATED": 2, "ERROR": 1})
    text = out.getvalue()
    assert "\x1b" not in text and "\r" not in text  # readable in a CI log
    last = text.strip().splitlines()[-1]
    assert "3/4 trials finished" in last and "1 running" in last and "1 errored" in last
    assert "best test/acc_rare = 0.9000 (t2 @ epoch 20)" in last


def test_a_min_objective_keeps_the_lowest_value():
    line = ProgressLine(metric="test/loss", mode="min", total=1, stream=io.StringIO())
    line.offer("a", 1, 0.5)
    line.offer("b", 2, 0.2)
    line.offer("c", 3, 0.3)
    assert line.best == (0.2, "b", 2)
