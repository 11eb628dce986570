"""What the trainer asks of a model, as typed protocols (no probing by attribute name).

Every model is an ``nn.Module`` whose ``forward(x)`` returns logits of shape (n, K). Beyond
that, a model may offer three capabilities, each a protocol the trainer checks once when it is
built:

* :class:`ClosedFormLoss`: the loss and the gradient of its parameters in closed form (no
  autograd); the trainer then only calls the optimiser's ``step``.
* :class:`MixesLinearly`: ``forward(x, mix=plan)`` mixes after the first linear layer, which
  equals mixing the inputs (the layer is linear) at a fraction of the memory.
* :class:`HasFilters`: first-layer filters of shape (K, m, d) for the feature diagnostics.

``tests/core/test_model_contract.py`` checks every registered model against the protocols it claims.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from torch import Tensor

if TYPE_CHECKING:
    from mixup_core.mixing import MixPlan


@runtime_checkable
class ClosedFormLoss(Protocol):
    def loss_and_grad(self, x: Tensor, targets: Tensor, mix: MixPlan | None = None) -> Tensor:
        """The mean soft cross-entropy; fills every parameter's ``.grad``."""
        ...


@runtime_checkable
class MixesLinearly(Protocol):
    #: Set to True by a model whose ``forward(x, mix=plan)`` mixes after its first linear layer.
    mixes_linearly: Literal[True]

    def __call__(self, x: Tensor, mix: MixPlan | None = None) -> Tensor: ...


@runtime_checkable
class HasFilters(Protocol):
    def filters(self) -> Tensor:
        """First-layer filters, shape (K, m, d) (a view of the weights)."""
        ...
