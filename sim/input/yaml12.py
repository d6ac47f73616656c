"""YAML 1.2 core-schema scalars, so that a scenario's numbers mean what JSON-like YAML says they mean.

PyYAML resolves plain scalars by YAML 1.1, where ``044`` is octal 36, ``1:00`` is sexagesimal 60, ``1_2``
is 12, ``yes``/``no``/``on``/``off`` are booleans and ``2024-01-01`` a date, but ``1e-3`` is a string.
:class:`CoreSchemaLoader` resolves by the YAML 1.2 core schema instead (YAML 1.2.2, section 10.3.2) and
:func:`scalar` builds the value of a resolved node without PyYAML's 1.1 constructors: ``044`` is 44,
``1e-3`` is 0.001, and ``1:00``, ``1_2``, ``yes`` and dates stay strings, which the strict schema then
refuses where it wants a number or a boolean.
"""

from __future__ import annotations

import re

import yaml

TAG = "tag:yaml.org,2002:"
#: Integers longer than this are no count or amount a scenario has (and Python refuses > 4300 digits).
MAX_INT_DIGITS = 100

_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                    r"|[-+]?(?:\.inf|\.Inf|\.INF)|\.nan|\.NaN|\.NAN)$")


class CoreSchemaLoader(yaml.SafeLoader):
    """PyYAML's safe loader with the YAML 1.2 core schema's implicit resolvers instead of YAML 1.1's."""


#: The core schema's implicit resolvers: tag, pattern, the characters a match can start with.
_RESOLVERS = (
    ("null", _NULL, ["~", "n", "N", ""]),
    ("bool", _BOOL, list("tTfF")),
    ("int", _INT, list("-+0123456789")),
    ("float", _FLOAT, list("-+.0123456789")),
)
CoreSchemaLoader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in _RESOLVERS:
    CoreSchemaLoader.add_implicit_resolver(TAG + _tag, _pattern, _first)


def _core_constructor(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> None | bool | int | float | str:
    return scalar(node)


for _tag in ("null", "bool", "int", "float"):   # so that yaml.load(..., Loader=CoreSchemaLoader) agrees too
    CoreSchemaLoader.add_constructor(TAG + _tag, _core_constructor)


class CoreSchemaDumper(yaml.SafeDumper):
    """PyYAML's safe dumper quoting every string that YAML 1.1 *or* the 1.2 core schema would read as
    something else (``yes`` and ``1e3`` alike), so that what it writes reads back the same either way."""


for _tag, _pattern, _first in _RESOLVERS:   # added to YAML 1.1's, which the dumper keeps
    CoreSchemaDumper.add_implicit_resolver(TAG + _tag, _pattern, _first)


class ScalarError(ValueError):
    """A scalar whose text does not fit its (explicit) tag, e.g. ``!!int 1_000``."""


def scalar(node: yaml.ScalarNode) -> None | bool | int | float | str:
    """The value of a scalar node resolved by :class:`CoreSchemaLoader` (str, int, float, bool or null)."""
    kind, text = node.tag.removeprefix(TAG), node.value
    if kind == "str":
        return text
    if kind == "null":
        if not _NULL.match(text):
            raise ScalarError(f"{text!r} is not null (write ~, null or nothing)")
        return None
    if kind == "bool":
        if not _BOOL.match(text):
            raise ScalarError(f"{text!r} is not a boolean (write true or false)")
        return text.lower() == "true"
    if kind == "int":
        return _int(text)
    if kind == "float":
        if _INT.match(text):
            return float(_int(text))
        if not _FLOAT.match(text):
            raise ScalarError(f"{text!r} is not a number")
        special = text.lstrip("+-").lower()
        if special in (".inf", ".nan"):
            value = float(special[1:])
            return -value if text.startswith("-") else value
        return float(text) + 0.0   # -0.0 is 0: a rate of -0.0 passed `>= 0` and sent event times to -inf
    raise ScalarError(f"tag {node.tag!r} is not a plain scalar")


def _int(text: str) -> int:
    if not _INT.match(text):
        raise ScalarError(f"{text!r} is not an integer (YAML 1.2: digits, 0o octal or 0x hexadecimal)")
    if len(text) > MAX_INT_DIGITS:
        raise ScalarError(f"an integer of {len(text)} digits is far beyond any count or amount")
    if text.startswith(("0o", "0x")):
        return int(text[2:], 8 if text[1] == "o" else 16)
    return int(text, 10)
