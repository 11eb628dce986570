"""PyTorch's default initialisation, drawn from an explicit generator.

``nn.Conv2d`` and ``nn.Linear`` initialise themselves from the global torch generator when they
are built. Image models therefore build their layers on the meta device (no storage, no draws)
and call :func:`materialise`, which allocates them on the CPU and draws every weight from the
trial's INIT generator with PyTorch's default distributions. The initial weights then depend on
the trial seed alone, and the global generator is never touched.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def reinitialise(module: nn.Module, generator: torch.Generator) -> None:
    """Redraws conv and linear layers as PyTorch does; norm layers start at weight 1, bias 0.

    Raises:
        TypeError: a layer holds parameters of its own that no rule here covers.
    """
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            # PyTorch's default: kaiming_uniform_(a=√5), i.e. U(±1/√fan_in), for weights and biases.
            nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
            if layer.bias is not None:
                bound = 1.0 / math.sqrt(layer.weight[0].numel())
                nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
        elif isinstance(layer, nn.modules.batchnorm._NormBase):
            layer.reset_parameters()  # also zeroes the running statistics
        elif any(True for _ in layer.parameters(recurse=False)):
            raise TypeError(f"no initialisation rule for {type(layer).__name__}")


def materialise(module: nn.Module, generator: torch.Generator) -> None:
    """Allocates a module built on the meta device on the CPU and draws its weights."""
    module.to_empty(device="cpu")
    reinitialise(module, generator)
