"""The reference trainer (tests/core/reference_trainer.py: one seed of one config, written the
textbook way, the unpacked oracle of the equivalence tests) for the benchmarks that measure
packs against it. Run a benchmark from anywhere: the repository root is put on the path."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.core.reference_trainer import Trainer

__all__ = ["Trainer"]
