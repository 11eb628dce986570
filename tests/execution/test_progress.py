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


def test_the_first_eta_waits_for_enough_training_and_ignores_the_start_up(monkeypatch):
    import sweeps.execution.progress as progress

    clock = [1000.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    line = ProgressLine(metric="val/acc_rare", mode="max", total=10, stream=io.StringIO(),
                        budget=100)
    clock[0] += 60.0  # Ray's start-up: no training, must not count in the rate
    line.trial("t0", epoch=0, budget=100, name="a")
    assert line.eta() is None
    line.trial("t0", epoch=10, budget=100, name="a")  # the first trained epochs
    clock[0] += 1.0
    line.trial("t0", epoch=20, budget=100, name="a")
    assert line.eta() is None  # 2% of 1000 trial-epochs, 1 s of training: too little to say
    for step in range(1, 7):  # 10 trial-epochs a second from here on
        clock[0] += 1.0
        line.trial("t0", epoch=20 + 10 * step, budget=100, name="a")
    eta = line.eta()
    # 920 trial-epochs left at the measured 10 a second (the start-up left out: with it the
    # rate would read 70 / 67 s and the ETA about 15 minutes)
    assert eta is not None and abs(eta - 920 / 10) < 1e-6, eta
