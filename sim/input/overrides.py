"""``--set dotted.key=value`` overrides, applied to a document before it is validated, so that their
values pass the same checks as the file's (their problems name ``--set``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sim.input.documents import Document, read_value
from sim.input.errors import InputError, KeyPath, Problem, dotted


def apply_overrides(doc: Document, overrides: Sequence[str]) -> None:
    """Apply ``dotted.key=value`` overrides (values read as YAML scalars or flow collections, by the same
    YAML 1.2 core-schema rules as a file: ``044`` is 44, ``yes`` a string)."""
    for text in overrides:
        path, value = parse_override(text)
        set_path(doc.data, path, value)
        doc.overridden.add(path)


def parse_override(text: str) -> tuple[KeyPath, Any]:
    """``dotted.key=value`` as (key path, value); list indices become ints."""
    key, sep, value_text = text.partition("=")
    if not sep or not key.strip():
        raise InputError([Problem("--set", (), f"{text!r}: expected dotted.key=value")])
    parts = key.strip().split(".")
    if not all(parts):
        raise InputError([Problem("--set", (), f"{text!r}: empty key in the dotted path")])
    path: KeyPath = tuple(int(p) if p.isdigit() else p for p in parts)
    try:
        value = read_value(value_text, "--set", path) if value_text.strip() else ""
    except InputError as exc:
        reason = "; ".join(p.message for p in exc.problems)
        raise InputError([Problem("--set", path, f"cannot read value {value_text!r}: {reason}")]) from None
    return path, value


def set_path(data: dict[str, Any], path: KeyPath, value: Any) -> None:
    target: Any = data
    for depth, key in enumerate(path[:-1]):
        if isinstance(target, list) and isinstance(key, int):
            if key >= len(target):
                raise InputError([Problem("--set", path[: depth + 1], f"index {key} is out of range "
                                          f"(the list has {len(target)} items)")])
            target = target[key]
        elif isinstance(target, dict):
            if isinstance(path[depth + 1], int) and target.get(key) is None:
                raise InputError([_no_list(path, depth + 1)])
            target = target.setdefault(key, {})
        else:
            raise InputError([Problem("--set", path[: depth + 1], "is not a mapping or list")])
    last = path[-1]
    if isinstance(target, list) and isinstance(last, int):
        if last >= len(target):
            raise InputError([Problem("--set", path, f"index {last} is out of range "
                                      f"(the list has {len(target)} items)")])
        target[last] = value
    elif isinstance(target, dict):
        target[last] = value
    else:
        raise InputError([Problem("--set", path, "cannot be set here")])


#: What an item of a list written with --set looks like, for the message when the scenario has no such list.
_LIST_EXAMPLES = {("policy", "tiers"): "[{name: gold, min_spend_12m: 100}]"}


def _no_list(path: KeyPath, size: int) -> Problem:
    """The problem of an index into a list the scenario does not have: say so, and how to add the list."""
    listed, index, rest = path[:size], path[size], path[size + 1:]
    example = _LIST_EXAMPLES.get(listed) or (f"[{{{dotted(rest)}: ...}}]" if len(rest) == 1 else "[...]")
    return Problem("--set", path, f"the scenario has no {listed[-1]} (no {dotted(listed)} list), so there is no item "
                                  f"{index} to set; add the whole list with --set, e.g. "
                                  f"--set '{dotted(listed)}={example}'")
