"""Seeded random streams derived from the trial seed.

Every random draw in a trial comes from one of these generators; nothing touches the global
torch or NumPy RNG. Each purpose (data, initialisation, mixing, batch order) gets its own
stream so that, for example, switching Mixup on does not change the data or the initial weights.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
import torch


class Stream(IntEnum):
    DATA = 0
    INIT = 1
    MIX = 2
    BATCHES = 3
    AUGMENT = 4
    VAL = 5  # the validation split: its own points, or which training images are held out


def derive_seed(seed: int, stream: Stream) -> int:
    """A 63-bit seed for ``stream``, statistically independent of the other streams."""
    words = np.random.SeedSequence([seed, int(stream)]).generate_state(2, dtype=np.uint32)
    return (int(words[0]) << 31) ^ int(words[1])


def make_generator(seed: int, stream: Stream) -> torch.Generator:
    """A CPU ``torch.Generator`` for ``stream`` of the trial with ``seed``."""
    return torch.Generator(device="cpu").manual_seed(derive_seed(seed, stream))


def numpy_rng_from(generator: torch.Generator) -> np.random.Generator:
    """A NumPy generator whose seed is drawn from ``generator`` (for draws torch lacks, e.g. Beta)."""
    seed = int(torch.randint(0, 2**62, (), generator=generator))
    return np.random.default_rng(seed)
