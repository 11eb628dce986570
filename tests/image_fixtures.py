"""Tiny CIFAR-format data sets for the tests, written in the real on-disk format.

The files are what the official archives unpack to (pickled dicts of uint8 rows, the real class
names), filled with random pixels, so torchvision's CIFAR10/CIFAR100 classes read them as they
read the real data. Labels are balanced: every class appears ``n // K`` or ``n // K + 1`` times.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                   "truck")
CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup",
    "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house",
    "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man",
    "maple_tree", "motorcycle", "mountain", "mouse", "mushroom", "oak_tree", "orange", "orchid",
    "otter", "palm_tree", "pear", "pickup_truck", "pine_tree", "plain", "plate", "poppy", "porcupine",
    "possum", "rabbit", "raccoon", "ray", "road", "rocket", "rose", "sea", "seal", "shark", "shrew",
    "skunk", "skyscraper", "snail", "snake", "spider", "squirrel", "streetcar", "sunflower",
    "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor", "train", "trout",
    "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
)
CIFAR100_SUPERCLASSES = (
    "aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables",
    "household_electrical_devices", "household_furniture", "insects", "large_carnivores",
    "large_man-made_outdoor_things", "large_natural_outdoor_scenes", "large_omnivores_and_herbivores",
    "medium_mammals", "non-insect_invertebrates", "people", "reptiles", "small_mammals", "trees",
    "vehicles_1", "vehicles_2",
)


def _pickle(path: Path, content: dict[str, object]) -> None:
    with path.open("wb") as f:
        pickle.dump(content, f, protocol=2)  # the official files are Python 2 pickles


def _balanced_labels(rng: np.random.Generator, n: int, num_classes: int) -> list[int]:
    return rng.permutation(np.arange(n) % num_classes).tolist()


def _batch(rng: np.random.Generator, labels: list[int], name: str) -> dict[str, object]:
    n = len(labels)
    return {
        "batch_label": name,
        "labels": labels,
        "data": rng.integers(0, 256, size=(n, 3 * 32 * 32), dtype=np.uint8),
        "filenames": [f"fixture_{name.replace(' ', '_')}_{i}.png" for i in range(n)],
    }


def write_cifar10_fixture(root: Path, *, n_train: int = 100, n_test: int = 50, seed: int = 0) -> Path:
    """Writes ``root/cifar10/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}``.

    The training images are split over the five batch files. Returns ``root / "cifar10"``, the
    data set folder (``data.root``); ``MIXUP_DATA_ROOT=root`` finds it too.
    """
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    labels = _balanced_labels(rng, n_train, 10)
    for i, part in enumerate(np.array_split(np.arange(n_train), 5), start=1):
        _pickle(folder / f"data_batch_{i}",
                _batch(rng, [labels[j] for j in part], f"training batch {i} of 5"))
    _pickle(folder / "test_batch",
            _batch(rng, _balanced_labels(rng, n_test, 10), "testing batch 1 of 1"))
    _pickle(folder / "batches.meta", {"label_names": list(CIFAR10_CLASSES),
                                      "num_cases_per_batch": 10000, "num_vis": 3072})
    return folder.parent


def _cifar100_split(rng: np.random.Generator, n: int, name: str) -> dict[str, object]:
    content = _batch(rng, _balanced_labels(rng, n, 100), name)
    fine = content.pop("labels")
    assert isinstance(fine, list)
    return {**content, "fine_labels": fine, "coarse_labels": [label // 5 for label in fine]}


def write_cifar100_fixture(root: Path, *, n_train: int = 200, n_test: int = 100, seed: int = 0) -> Path:
    """Writes ``root/cifar100/cifar-100-python/{train, test, meta}``; returns ``root / "cifar100"``.

    Coarse labels are ``fine // 5`` (not the real grouping, which the loader does not read).
    """
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar100" / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    _pickle(folder / "train", _cifar100_split(rng, n_train, "training"))
    _pickle(folder / "test", _cifar100_split(rng, n_test, "testing"))
    _pickle(folder / "meta", {"fine_label_names": list(CIFAR100_CLASSES),
                              "coarse_label_names": list(CIFAR100_SUPERCLASSES)})
    return folder.parent
