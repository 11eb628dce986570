"""Failpoints: named places in a trial where a test can hold one process and kill it there.

Tests wait on the ``.hit`` file the trial itself writes (an event), never on a poll of the
records that a fast trial can outrun. Imports neither Ray nor torch.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

#: Folder of armed failpoints (tests and benchmarks/node_loss_stress.py only). A file
#: ``<name>.armed`` there makes the first trial process that reaches failpoint ``name`` claim it
#: (an atomic rename, so exactly one process does), write ``<name>.hit`` with its trial and node,
#: and wait until that file is removed or ``FAILPOINT_HOLD_S`` pass: the test kills the node
#: meanwhile, at a moment it knows exactly. The armed file may hold ``{"min_epoch": N}``.
FAILPOINT_ENV = "MIXUP_FAILPOINTS"
FAILPOINT_HOLD_S = 120.0


def failpoint(name: str, *, node_id: str, trial_id: str, epoch: int = 0) -> None:
    """Holds this process at failpoint ``name`` if a test armed it (see FAILPOINT_ENV)."""
    folder = os.environ.get(FAILPOINT_ENV)
    if not folder:
        return
    armed, claimed = Path(folder) / f"{name}.armed", Path(folder) / f"{name}.claimed"
    try:
        condition = json.loads(armed.read_text() or "{}")
    except (OSError, ValueError):
        return
    if epoch < int(condition.get("min_epoch", 0)):
        return
    try:
        armed.rename(claimed)
    except OSError:
        return  # another process claimed it first
    hit = Path(folder) / f"{name}.hit"
    info = {"trial_id": trial_id, "epoch": epoch, "pid": os.getpid(),
            "node_id": node_id}
    hit.with_suffix(".tmp").write_text(json.dumps(info))
    hit.with_suffix(".tmp").replace(hit)
    deadline = time.monotonic() + FAILPOINT_HOLD_S
    while hit.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
