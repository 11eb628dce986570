"""One driver per sweep: an OS file lock on ``<sweep_dir>/driver.lock``.

The driver (``run``, ``resume``, ``sync``) holds an exclusive ``flock`` for as long as it runs and
writes its pid, host and start time into the file; the kernel releases the lock when the process
dies, however it dies, so a stale lock cannot block a later ``resume``. Readers (``best``,
``export``, ``report``) take the shared lock without waiting: if they get it no driver is running
and they may rebuild the sweep's tables in its folder; if they do not, the sweep is live and they
read its records without writing anything.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from sweeps.errors import UsageError, storage_fault

LOCK_FILE = "driver.lock"
#: What to do after a storage fault stopped a driver: nothing recorded was lost.
_THEN = "nothing recorded is lost; free space or make it writable, then run the command again"
#: How long a driver waits for readers that hold the shared lock (they hold it for milliseconds).
ACQUIRE_WAIT_S = 5.0


def _open(directory: Path) -> IO[str]:
    return (directory / LOCK_FILE).open("a+", encoding="utf-8")


def holder(directory: Path) -> str:
    """Who holds the lock, as written by the driver ("pid 123 on host-a since 20:01:02")."""
    try:
        info = json.loads((directory / LOCK_FILE).read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another process"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("since", 0)))
    return f"pid {info.get('pid')} on {info.get('host')} (since {since})"


class DriverLock:
    """The exclusive lock of a running driver; ``release`` (or process death) frees it."""

    def __init__(self, directory: Path, *, name: str) -> None:
        try:
            self._file = _open(directory)
        except OSError as err:  # read-only (or full, for a new lock file): nothing is touched
            raise storage_fault(err, f"sweep {name!r}", then=_THEN) from None
        deadline = time.monotonic() + ACQUIRE_WAIT_S
        while True:
            try:
                fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline or _driver_running(directory):
                    self._file.close()
                    raise UsageError(f"sweep {name!r} is being run by {holder(directory)}; "
                                     "wait for it to end or stop it first") from None
                time.sleep(0.05)
        try:
            self._file.seek(0)
            self._file.truncate()
            self._file.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                         "since": time.time()}))
            self._file.flush()
        except OSError as err:  # a full disk: the lock is given back, nothing else was written
            self.release()
            raise storage_fault(err, f"sweep {name!r}", then=_THEN) from None

    def release(self) -> None:
        if not self._file.closed:
            with contextlib.suppress(OSError):  # a full disk: the kernel's lock is what counts
                self._file.seek(0)
                self._file.truncate()
                self._file.flush()
            fcntl.flock(self._file, fcntl.LOCK_UN)
            with contextlib.suppress(OSError):
                self._file.close()


def _driver_running(directory: Path) -> bool:
    """True when the holder is a live driver process on this host (not a reader)."""
    try:
        info = json.loads((directory / LOCK_FILE).read_text() or "{}")
    except (OSError, ValueError):
        return False
    if not isinstance(info, dict) or info.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(info["pid"]), 0)
    except (KeyError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def folder_state(directory: Path) -> str:
    """``running`` (a driver holds the lock), ``idle``, or ``read-only`` (nobody can write the
    folder, so no driver of ours runs there and an interrupted sweep cannot go on in place).
    One open of the lock file and one non-blocking shared lock: a reader's lock does not count."""
    if not directory.is_dir():
        return "idle"
    writable = True
    try:
        handle = _open(directory)
    except OSError:
        writable = False
        try:
            handle = (directory / LOCK_FILE).open("r", encoding="utf-8")
        except OSError:
            return "read-only"
    with handle:
        try:  # a shared lock on a read-only handle still tells whether a driver holds it
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:  # a driver holds it (or is writing who it is)
            handle.seek(0)
            return "running" if handle.read().strip() else "idle"
        fcntl.flock(handle, fcntl.LOCK_UN)
    return "idle" if writable else "read-only"


def driver_holds(directory: Path) -> bool:
    """A driver holds the sweep's lock now (one check: a reader's shared lock does not count)."""
    return folder_state(directory) == "running"


@contextlib.contextmanager
def idle(directory: Path) -> Iterator[bool]:
    """Yields True while holding the shared lock: no driver runs, this process may rebuild the
    folder's tables. False for a live sweep (or a folder it cannot write): read, never write."""
    if not directory.is_dir():
        yield False
        return
    try:
        handle = _open(directory)
    except OSError:  # a read-only folder: nobody can be writing into it through us
        yield False
        return
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        handle.close()
