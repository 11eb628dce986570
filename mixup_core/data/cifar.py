"""CIFAR-10 and CIFAR-100 from a local folder in the standard on-disk format, via torchvision.

The data set folder (``data.root``; default ``$MIXUP_DATA_ROOT/<name>`` or ``./data/<name>``)
holds what the official archives unpack to: ``cifar-10-batches-py/{data_batch_1..5, test_batch,
batches.meta}`` or ``cifar-100-python/{train, test, meta}``. Nothing is downloaded unless
``data.download`` is true. torchvision's classes read the files; their MD5 checks are dropped so
that the same code reads the CIFAR-format fixtures of the tests (a damaged file still fails when
it is unpickled).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from mixup_core.data.image_sources import LabelledImages
from mixup_core.errors import DataUnavailable

if TYPE_CHECKING:
    from mixup_core.config import DataConfig

#: Environment variable naming a folder that holds one sub-folder per data set.
DATA_ROOT_VARIABLE = "MIXUP_DATA_ROOT"
CIFAR_PAGE = "https://www.cs.toronto.edu/~kriz/cifar.html"

#: The normalisation of the reference recipe (facebookresearch/mixup-cifar10).
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)


@dataclass(frozen=True)
class CifarLayout:
    """Where one CIFAR variant's files sit inside its data set folder."""

    title: str
    folder: str
    files: tuple[str, ...]
    archive: str
    torchvision_class: str


CIFAR10_LAYOUT = CifarLayout(
    "CIFAR-10", "cifar-10-batches-py",
    (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"),
    "cifar-10-python.tar.gz", "CIFAR10",
)
CIFAR100_LAYOUT = CifarLayout(
    "CIFAR-100", "cifar-100-python", ("train", "test", "meta"), "cifar-100-python.tar.gz",
    "CIFAR100",
)


def data_root(config: DataConfig) -> Path:
    """The folder of ``config.name``: ``data.root``, else ``$MIXUP_DATA_ROOT/<name>``, else
    ``./data/<name>``."""
    if config.root is not None:
        return Path(config.root).expanduser()
    base = os.environ.get(DATA_ROOT_VARIABLE)
    return (Path(base).expanduser() if base else Path("data")) / config.name


def _missing_files_error(root: Path, layout: CifarLayout, missing: list[str]) -> DataUnavailable:
    where = root.resolve()
    return DataUnavailable(
        f"data.root: {layout.title} not found: {where / layout.folder} lacks {', '.join(missing)}; "
        f"unpack {layout.archive} from {CIFAR_PAGE} into {where}, or point data.root (or "
        f"${DATA_ROOT_VARIABLE}, a folder holding one sub-folder per data set) at a copy, or "
        f"set data.download=true on a machine with internet"
    )


def _reader_class(layout: CifarLayout) -> Any:
    """torchvision's class for ``layout`` with its checksums dropped (existence checks remain)."""
    from torchvision import datasets  # imported on first use: torchvision takes ~1 s to import

    base = getattr(datasets, layout.torchvision_class)
    attrs = {
        "train_list": [[name, None] for name, _ in base.train_list],
        "test_list": [[name, None] for name, _ in base.test_list],
        "meta": {**base.meta, "md5": None},
    }
    return type(f"Unchecked{base.__name__}", (base,), attrs)


def _missing_files(root: Path, layout: CifarLayout) -> list[str]:
    return [f for f in layout.files if not (root / layout.folder / f).is_file()]


def check_cifar(config: DataConfig, layout: CifarLayout) -> None:
    """Raises :class:`DataUnavailable` when the files are missing and download is off."""
    root = data_root(config)
    if not config.download and (missing := _missing_files(root, layout)):
        raise _missing_files_error(root, layout, missing)


def load_cifar(config: DataConfig, layout: CifarLayout) -> LabelledImages:
    """Reads both splits of ``layout`` from the data set folder of ``config``."""
    check_cifar(config, layout)
    root = data_root(config)
    reader = _reader_class(layout)
    if config.download and _missing_files(root, layout):
        try:
            reader(str(root), train=True, download=True)
        except OSError as err:  # no network, a refused connection, a full disk
            raise DataUnavailable(
                f"data.download: fetching {layout.archive} into {root.resolve()} failed "
                f"({type(err).__name__}: {' '.join(str(err).split())})"
            ) from None
    train, test = reader(str(root), train=True), reader(str(root), train=False)
    return LabelledImages(
        x_train=_nchw(train.data), y_train=torch.tensor(train.targets, dtype=torch.int64),
        x_test=_nchw(test.data), y_test=torch.tensor(test.targets, dtype=torch.int64),
        classes=tuple(train.classes),
    )


def _nchw(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))


def check_cifar10(config: DataConfig) -> None:
    check_cifar(config, CIFAR10_LAYOUT)


def check_cifar100(config: DataConfig) -> None:
    check_cifar(config, CIFAR100_LAYOUT)


def load_cifar10(config: DataConfig) -> LabelledImages:
    """CIFAR-10: 50,000 training and 10,000 test images, 32×32 RGB, 10 classes."""
    return load_cifar(config, CIFAR10_LAYOUT)


def load_cifar100(config: DataConfig) -> LabelledImages:
    """CIFAR-100: 50,000 training and 10,000 test images, 32×32 RGB, 100 fine classes."""
    return load_cifar(config, CIFAR100_LAYOUT)
