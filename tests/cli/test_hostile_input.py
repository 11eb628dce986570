"""Hostile command lines: flags out of range, and sweep names that are paths, hidden, huge, or a
file's name. Each ends with exit code 2 and one line ``mixup-sweep COMMAND: error: ...`` naming
the flag or the name, and writes nothing.

Every command runs in this process (``mixup_cli.main.main``) and is refused before it starts
anything: no sweep, no server, no training. The strategies only make inputs that must be refused.
"""

from __future__ import annotations

import io
import re
import shutil
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mixup_cli.main import MAX_SEEDS, main
from sweeps.spec.loader import MAX_PACK
from tests.sweep_helpers import write_spec

#: The examples of a test share its tmp_path (the working folder); each checks it left it as it was.
HOSTILE = {"deadline": None, "suppress_health_check": [HealthCheck.function_scoped_fixture]}


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working folder, holding one small spec: whatever a command got past its refusal to
    write (``sweep_results``, ``mlflow.db``, a storage folder) would land in it."""
    monkeypatch.chdir(tmp_path)
    write_spec(tmp_path, "hostile", search_space={})
    return tmp_path


def refusal(capsys: pytest.CaptureFixture[str], argv: list[str], command: str) -> str:
    """The stderr of ``mixup-sweep ARGV``, checked to be exit code 2 and one line
    ``mixup-sweep COMMAND: error: ...``."""
    code = main(argv)
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert code == 2 and len(lines) == 1, (code, err)
    assert lines[0].startswith(f"mixup-sweep {command}: error: "), lines
    return lines[0]


def contents(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder``, with the bytes of each file."""
    return {str(path.relative_to(folder)): path.read_bytes() if path.is_file() else None
            for path in folder.rglob("*")}


# --- flags out of range ---------------------------------------------------------------------------

BEYOND = 10**100  # far past any bound, still an integer argparse reads


@settings(max_examples=100, **HOSTILE)
@given(seeds=st.integers(max_value=0) | st.integers(min_value=MAX_SEEDS + 1, max_value=BEYOND))
def test_reproduce_seeds_outside_1_to_1024_exit_2_naming_the_flag(lab, capsys, seeds):
    before = contents(lab)
    line = refusal(capsys, ["reproduce", f"--seeds={seeds}"], "reproduce")
    assert f"--seeds: must be in [1, {MAX_SEEDS}], got {seeds}" in line
    assert contents(lab) == before


@settings(max_examples=100, **HOSTILE)
@given(port=st.integers(max_value=0) | st.integers(min_value=65_536, max_value=BEYOND))
def test_ui_ports_outside_1_to_65535_exit_2_naming_the_flag(lab, capsys, port):
    before = contents(lab)
    line = refusal(capsys, ["ui", f"--port={port}", "--tracking-uri", f"sqlite:///{lab}/none.db",
                            "--storage", "res"], "ui")
    assert f"ui --port {port}: a port is 1-65535" in line
    assert contents(lab) == before


@settings(max_examples=60, **HOSTILE)
@given(pack=st.integers(max_value=0) | st.integers(min_value=MAX_PACK + 1, max_value=BEYOND))
def test_run_pack_outside_1_to_1024_exits_2_naming_the_flag(lab, capsys, pack):
    before = contents(lab)
    line = refusal(capsys, ["run", "hostile.yaml", "--storage", "res", f"--pack={pack}",
                            "--no-report"], "run")
    assert f"--pack: must be {'>= 1' if pack < 1 else f'<= {MAX_PACK:,}'}, got " in line
    assert contents(lab) == before


# --- sweep names ------------------------------------------------------------------------------------

#: The documented rule for a sweep name (sweeps.spec.names), written out here as the tests read it.
NAME_RULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_NAME_CHARS = string.ascii_letters + string.digits + "_.-"
_ANY = st.text(max_size=20)

BAD_NAMES = st.one_of(
    st.builds("{}/{}".format, _ANY, _ANY),  # a path
    st.sampled_from([".", "..", "../x", "x/..", "/", "~", "~/x"]),
    st.builds("{}\0{}".format, _ANY, _ANY),
    st.builds(".{}".format, st.text(_NAME_CHARS, max_size=20)),  # hidden
    st.builds("-{}".format, st.text(_NAME_CHARS, max_size=20)),  # an option, to a shell
    st.builds("a{}".format, st.text(_NAME_CHARS, min_size=100, max_size=1000)),  # too long, only
    st.just(""),
    st.text(max_size=40).filter(lambda name: not NAME_RULE.fullmatch(name)),
)
GOOD_NAMES = st.from_regex(NAME_RULE, fullmatch=True)

NAME_COMMANDS = ["best", "status", "delete", "resume", "export", "sync", "report", "run"]


def name_argv(command: str, name: str) -> list[str]:
    """``mixup-sweep COMMAND NAME --storage res``: ``run`` takes the name as ``--name``, the
    others after ``--`` (so that a name starting with '-' reaches the command as a name)."""
    if command == "run":
        return ["run", "hostile.yaml", "--storage", "res", f"--name={name}", "--no-report"]
    extra = {"delete": ["--yes"], "export": ["--out", "out.csv"], "resume": ["--no-report"],
             "report": ["--no-mlflow"]}.get(command, [])
    return [command, "--storage", "res", *extra, "--", name]


@settings(max_examples=250, **HOSTILE)
@given(command=st.sampled_from(NAME_COMMANDS), name=BAD_NAMES)
def test_a_name_that_is_not_a_plain_folder_name_exits_2_naming_it_and_writes_nothing(
        lab, capsys, command, name):
    before = contents(lab)
    line = refusal(capsys, name_argv(command, name), command)
    assert ("--name " if command == "run" else "sweep name ") + repr(name)[:50] in line
    assert contents(lab) == before


@settings(max_examples=80, **HOSTILE)
@given(command=st.sampled_from(NAME_COMMANDS), name=GOOD_NAMES, content=st.binary(max_size=64))
def test_a_name_that_is_a_file_in_the_storage_exits_2_and_leaves_the_file_alone(
        lab, capsys, command, name, content):
    shutil.rmtree(lab / "res", ignore_errors=True)
    (lab / "res").mkdir()
    (lab / "res" / name).write_bytes(content)
    before = contents(lab)
    line = refusal(capsys, name_argv(command, name), command)
    assert repr(name) in line
    assert command != "run" or "is a file, not a sweep folder" in line
    assert contents(lab) == before


# Without --yes and no terminal to ask on, `delete` used to refuse before checking NAME and
# echo it raw (a name with a line break printed two lines): the name is checked first.
@settings(max_examples=50, **HOSTILE)
@example(name="two\nlines")
@given(name=BAD_NAMES)
def test_delete_without_yes_refuses_a_bad_name_before_asking(lab, capsys, monkeypatch, name):
    monkeypatch.setattr("sys.stdin", io.StringIO())  # no terminal to ask on
    before = contents(lab)
    line = refusal(capsys, ["delete", "--storage", "res", "--", name], "delete")
    assert "sweep name " + repr(name)[:50] in line
    assert contents(lab) == before
