"""Which precision the patch CNN's GEMMs run in (``precision: auto | float32 | bfloat16``).

``bfloat16`` means bfloat16 copies of the GEMMs' operands (filters and data; in a pack's Gram
form the coefficients and the Gram matrix, mixup_core.training.closed_form), float32 accumulation inside
them, float32 master weights and everything else in float32. ``auto`` picks bfloat16 where the
hardware runs it natively: a CUDA device with bfloat16 tensor cores (compute capability 8.0 and
later), or a CPU with AVX512-BF16 or AMX-BF16 instructions (oneDNN uses them; ``/proc/cpuinfo``
lists them as ``avx512_bf16`` and ``amx_bf16``). Elsewhere bfloat16 is emulated and slower, so
``auto`` means float32. The README's "Packed trials and bfloat16" section shows that over 5 seeds
bfloat16 reproduces float32's rare- and common-test accuracies within 0.004.

Image models keep their own rule (sweeps of them use ``auto``: bfloat16 autocast on CUDA).
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

#: CPU flags (Linux ``/proc/cpuinfo``) under which oneDNN runs bfloat16 GEMMs natively.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.cache
def _cpu_flags() -> frozenset[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def bfloat16_is_native(device: torch.device) -> bool:
    """Whether bfloat16 matrix products run natively (fast) on ``device``."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.get_device_capability(device)[0] >= 8
    if device.type == "cpu":
        return any(flag in _cpu_flags() for flag in BF16_CPU_FLAGS)
    return False


def patch_cnn_gemm_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The dtype of the patch CNN's GEMMs for ``precision`` on ``device``."""
    if precision == "bfloat16" or (precision == "auto" and bfloat16_is_native(device)):
        return torch.bfloat16
    return torch.float32
