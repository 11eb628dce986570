"""Errors the CLI turns into one line on stderr and exit code 2 (kept free of heavy imports)."""

from __future__ import annotations

import errno


class UsageError(ValueError):
    """Bad command-line input or a missing sweep; printed on one line."""


class SweepInterrupted(Exception):
    """A signal (Ctrl-C, SIGTERM) stopped sweep ``name`` with ``ended`` of ``planned`` trials
    ended. The CLI says so on one line, with how to resume, and exits with 130."""

    def __init__(self, name: str, ended: int, planned: int) -> None:
        self.name, self.ended, self.planned = name, ended, planned
        super().__init__(f"interrupted: {ended} of {planned} trials ended")


class TrackingUnavailable(RuntimeError):
    """The MLflow tracking store cannot be reached; the message names the URI and the cause."""


class SpecError(ValueError):
    """A sweep spec is unreadable or invalid; ``str()`` is ``"<file>: <key.path>: <problem>"``."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        self.source, self.key, self.problem = source, key, problem
        text = ": ".join(part for part in (source, key, problem) if part)
        super().__init__("\\n".join(text.splitlines()))  # one line, even for odd keys

    def __reduce__(self) -> tuple[type[SpecError], tuple[str, str, str]]:
        return SpecError, (self.source, self.key, self.problem)  # survives pickling (Ray)


#: What an ``OSError`` says when the storage itself refuses a write, by errno.
_REFUSALS = {errno.ENOSPC: "full", errno.EDQUOT: "over its quota", errno.EROFS: "read-only",
             errno.EACCES: "not writable", errno.EPERM: "not writable",
             errno.EFBIG: "refusing a larger file"}


class StorageFault(UsageError):
    """The storage refused a write (full, read-only): one line; what was recorded is kept."""


def storage_refusal(err: BaseException | None) -> OSError | None:
    """The storage refusal (disk full, read-only, ...) behind ``err``, following its causes and
    contexts (Ray Tune and pyarrow raise their own errors while handling one); None if none."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in _REFUSALS:
            return err
        err = err.__cause__ or err.__context__
    return None


def storage_fault(err: OSError, what: str, *, then: str = "") -> StorageFault:
    """One line for a refused write: ``what`` failed, where, why, and what to do ``then``."""
    where = f" ({err.filename})" if err.filename else ""
    line = f"{what}: the storage is {_REFUSALS.get(err.errno or 0, 'failing')}{where}: " \
           f"{err.strerror or err}"
    return StorageFault(f"{line}; {then}" if then else line)
