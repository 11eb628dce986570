"""YAML as ML users write it: ``safe_load`` with YAML 1.2's rule for floats.

PyYAML implements YAML 1.1, where a float needs a dot, so ``lr: 1e-3`` is read as the string
"1e-3". This loader is PyYAML's safe loader (no Python objects, ever) with one more implicit
resolver: YAML 1.2's core-schema float (``1e-3``, ``5E-4``, ``.5``, ``-2.``, ``.inf``, ``.nan``).
Integers still resolve as integers (PyYAML's int rule is tried first).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

_FLOAT_1_2 = re.compile(r"""^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?
                            |[-+]?\.(?:inf|Inf|INF)
                            |\.(?:nan|NaN|NAN))$""", re.X)


class NumberSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` plus the YAML 1.2 float rule, refusing a key given twice in one
    mapping (PyYAML keeps the last silently; YAML itself says keys are unique)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
                seen.add(key)  # a set key passes `in` (as a frozenset) but not add
            except TypeError:  # an unhashable key: the base class explains it
                break
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"duplicate key {key!r}", key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        """PyYAML's int, but an integer too long for Python to read (over its 4,300-digit
        limit) is a YAML error at its line, not a bare ValueError."""
        try:
            return super().construct_yaml_int(node)
        except ValueError as err:
            raise yaml.constructor.ConstructorError(
                None, None, f"an integer of {len(node.value):,} characters cannot be read "
                f"({' '.join(str(err).split())[:60]}...)", node.start_mark) from None


NumberSafeLoader.add_constructor("tag:yaml.org,2002:int", NumberSafeLoader.construct_yaml_int)
NumberSafeLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_1_2,
                                       list("-+0123456789."))


def safe_load(text: str) -> Any:
    """Like ``yaml.safe_load``, with ``1e-3`` read as the number 0.001."""
    return yaml.load(text, Loader=NumberSafeLoader)
