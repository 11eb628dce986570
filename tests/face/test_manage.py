"""Managing sweeps from the command line: ``list``, ``status`` and ``delete`` (``--smoke`` names:
tests/execution/test_sweeps_local.py, the checked-in specs' smoke runs)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from sweeps.store.records import RecordLog
from sweeps.sweep import list_sweep_handles
from tests.conftest import wait_until
from tests.sweep_helpers import CLI, cli_env, mixup_sweep, sweep_runs, write_finished_sweep, write_spec

SPACE = {"mixup.alpha": {"kind": "grid", "values": [0.0, 1.0]}}
#: Long enough that the live sweep is still running when list, status and delete look at it
#: (the driver is killed at the end); with 3,000 this test failed once in a batch of runs.
LONG = {"data": {"dim": 400, "n_train": 60, "n_test": 200}, "optim.epochs": 60000,
        "log_every": 20}


def test_list_status_and_delete_a_finished_and_a_running_sweep(tmp_path: Path) -> None:
    done = write_spec(tmp_path, "done", search_space=SPACE, seeds=[0])
    assert mixup_sweep("run", str(done), "--storage", "res", cwd=tmp_path).returncode == 0
    live = write_spec(tmp_path, "live", trial=LONG, search_space=SPACE, seeds=[0],
                      search={"algorithm": "grid", "max_concurrent": 2})
    driver = subprocess.Popen([*CLI, "run", str(live), "--storage", "res", "--pack", "1",
                               "--no-report"],
                              cwd=tmp_path, env=cli_env(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        records = tmp_path / "res" / "live"

        def both_reporting() -> bool:  # both trials started and reported (they run at once)
            if not (records / "records.jsonl").exists():
                return False
            trials = RecordLog(records).trials.values()
            return len(trials) == 2 and all(r.epochs for r in trials)

        wait_until(both_reporting, timeout=120, what="both trials of the live sweep reporting")
        out = mixup_sweep("list", "--storage", "res", cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert lines[0].split()[:5] == ["name", "status", "trials", "best", "created"]
        rows = {line.split()[0]: line.split() for line in lines[1:]}
        assert rows["done"][1] == "finished" and rows["done"][2] == "2/2"
        assert rows["live"][1] == "running" and rows["live"][2] == "0/2"
        best = list_sweep_handles(tmp_path / "res")[1].summary().best
        assert best is not None and rows["done"][3] == f"{best:.4f}"

        out = mixup_sweep("status", "live", "--storage", "res", cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        assert "running" in out.stdout and "ETA" in out.stdout
        # named as in the live view and MLflow: α = 0 never mixes, so it is ERM
        assert "  ERM" in out.stdout and "α=1" in out.stdout, out.stdout
        assert "/60000" in out.stdout  # each running trial's epoch of its budget

        refused = mixup_sweep("delete", "live", "--storage", "res", "--yes", cwd=tmp_path)
        assert refused.returncode == 2 and "running" in refused.stderr
    finally:
        driver.kill()
        driver.wait()

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    _, children = sweep_runs(uri, "done")
    assert len(children) == 2
    asked = mixup_sweep("delete", "done", "--storage", "res", cwd=tmp_path)  # no TTY, no --yes
    assert asked.returncode == 2 and "--yes" in asked.stderr
    assert (tmp_path / "res" / "done").is_dir()
    out = mixup_sweep("delete", "done", "--storage", "res", "--yes", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "3 MLflow runs" in out.stdout and not (tmp_path / "res" / "done").exists()
    from mlflow.tracking import MlflowClient

    experiment = MlflowClient(uri).get_experiment_by_name("mixup-sweeps/done")
    assert experiment is not None
    assert MlflowClient(uri).search_runs([experiment.experiment_id]) == []
    listed = mixup_sweep("list", "--storage", "res", "--json", cwd=tmp_path)
    assert [s["name"] for s in json.loads(listed.stdout)] == ["live"]
    assert json.loads(listed.stdout)[0]["status"] == "interrupted"  # its driver was killed


def test_version_and_help_answer_without_importing_the_stack(tmp_path: Path) -> None:
    out = mixup_sweep("--version", cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.startswith("mixup-sweep ")
    out = mixup_sweep("--help", cwd=tmp_path)
    for command in ("list", "status", "delete", "best", "export"):
        assert command in out.stdout


def test_ui_checks_the_store_and_the_port_before_it_prints_a_url(tmp_path: Path) -> None:
    import socket

    out = mixup_sweep("ui", "--port", "5999", cwd=tmp_path)  # no mlflow.db here
    assert out.returncode == 2 and out.stdout == "" and "no MLflow store" in out.stderr
    assert not (tmp_path / "mlflow.db").exists()  # and none was created
    (tmp_path / "mlflow.db").write_bytes(b"")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = mixup_sweep("ui", "--port", str(port), cwd=tmp_path)
    assert out.returncode == 2 and out.stdout == "" and f"{port} is in use" in out.stderr


def test_run_ends_with_the_report_and_the_answer_on_the_parent_run_and_a_copy_keeps_its_own(
        tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    lab = tmp_path / "lab"
    lab.mkdir()
    spec = write_spec(lab, "answer", search_space=SPACE, seeds=[0],
                      description="α = 0 against α = 1 on a small task")
    out = mixup_sweep("run", str(spec), "--storage", "res", cwd=lab, report=True)
    assert out.returncode == 0, out.stderr
    report = lab / "res" / "answer" / "report" / "report.html"
    assert f"Report:  {report}" in out.stdout and report.is_file()
    uri = f"sqlite:///{lab / 'mlflow.db'}"
    parent, _ = sweep_runs(uri, "answer")
    note = parent.data.tags["mlflow.note.content"]  # the overview opens on the answer
    assert note.startswith("**Best of 2 trials by val/acc_rare (max): "), note
    assert note.endswith("\n\nα = 0 against α = 1 on a small task"), note
    [top] = json.loads(mixup_sweep("best", "answer", "--storage", "res", "--json", "--top", "1",
                                   cwd=lab).stdout.strip().splitlines()[-1])
    assert parent.data.tags["mixup_sweeps.best_trial"] == top["trial_id"]
    assert parent.data.tags["mixup_sweeps.best_settings"] in ("ERM", "α=1")  # named for what it is
    assert parent.data.metrics["best/val/acc_rare"] == top["value"]
    listed = [a.path for a in MlflowClient(uri).list_artifacts(parent.info.run_id, "report")]
    assert "report/report.html" in listed
    assert (lab / "mlartifacts" / "answer").is_dir()  # beside the store, not in ./mlruns

    # A copy of the whole folder works on its own store and artifacts, never the original's.
    copy = tmp_path / "copy"
    shutil.copytree(lab, copy)
    shutil.rmtree(lab)  # anything that still points at the original would recreate it
    out = mixup_sweep("report", "answer", "--storage", "res", cwd=copy)
    assert out.returncode == 0 and "warning" not in out.stderr, out.stderr
    steps = [line for line in out.stderr.splitlines() if line.startswith("report: ")]
    assert len(steps) >= 5 and steps[-1].startswith(f"report: {len(steps)}/{len(steps)} the page")
    assert not lab.exists()
    uri = f"sqlite:///{copy / 'mlflow.db'}"
    parent, children = sweep_runs(uri, "answer")
    client = MlflowClient(uri)
    for run in (parent, *children):
        assert client.get_run(run.info.run_id).info.artifact_uri.startswith(
            str(copy / "mlartifacts" / "answer"))
    listed = [a.path for a in client.list_artifacts(parent.info.run_id, "report")]
    assert "report/report.html" in listed
    best = mixup_sweep("best", "answer", "--storage", "res", "--source", "mlflow", cwd=copy)
    assert best.returncode == 0 and not lab.exists()


def test_every_command_has_an_example_and_every_option_its_help_and_default() -> None:
    import argparse

    from mixup_cli.main import _parser

    parser = _parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in commands.choices.items():
        assert command.epilog and command.epilog.startswith("example:\n  mixup-sweep " + name)
        text = command.format_help()
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, (name, action.dest)
            if action.option_strings and action.default not in (None, False, []):
                assert f"default: {action.default}" in text or "default" in action.help, (
                    name, action.dest)


def test_tab_completion_offers_commands_options_and_the_sweeps_in_storage(tmp_path: Path) -> None:
    for name in ("alpha-one", "alpha-two", "beta"):
        write_finished_sweep(tmp_path / "res", name)

    def complete(line: str) -> list[str]:
        answer = tmp_path / "completions"
        env = {**cli_env(), "_ARGCOMPLETE": "1", "COMP_LINE": line, "COMP_POINT": str(len(line)),
               "_ARGCOMPLETE_IFS": "\n", "_ARGCOMPLETE_STDOUT_FILENAME": str(answer)}
        done = subprocess.run(CLI, cwd=tmp_path, env=env, capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return sorted(answer.read_text().split())

    assert complete("mixup-sweep tr") == ["tracking", "train"]
    assert complete("mixup-sweep best --storage res al") == ["alpha-one", "alpha-two"]
    assert complete("mixup-sweep delete --storage res b") == ["beta"]
    assert complete("mixup-sweep best --for") == ["--format"]
    shell = mixup_sweep("completion", "bash", cwd=tmp_path)
    assert shell.returncode == 0 and "complete " in shell.stdout and "mixup-sweep" in shell.stdout
