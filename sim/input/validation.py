"""Documents validated against the pydantic schema; every pydantic error becomes a located
:class:`~sim.input.errors.Problem`, with "did you mean" for typos and the right block for misplaced keys."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from sim.input.documents import Document
from sim.input.errors import InputError, KeyPath, Problem, dotted
from sim.schema.base import KeyPathError


def validate(model: type[BaseModel], doc: Document) -> Any:
    """Validate ``doc`` against ``model``; every pydantic error becomes a located :class:`Problem`."""
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        raise InputError([_problem_from(err, doc, model) for err in exc.errors()]) from None


def _problem_from(err: Mapping[str, Any], doc: Document, model: type[BaseModel]) -> Problem:
    original = (err.get("ctx") or {}).get("error")
    if isinstance(original, KeyPathError):
        path = _strip_tags(err["loc"], doc.data, keep_missing_key=False) + original.path
        return doc.problem(path, str(original))
    kind = err["type"]
    path = _strip_tags(err["loc"], doc.data, keep_missing_key=kind == "missing")
    if kind.startswith("union_tag"):
        path += (str(err["ctx"]["discriminator"]).strip("'"),)
    if kind == "extra_forbidden":
        message = f"unknown key '{path[-1]}'" + _suggestion(str(path[-1]), path[:-1], model)
    elif kind == "missing":
        message = "required key is missing"
    else:
        message = err["msg"].removeprefix("Value error, ")
        if not isinstance(err.get("input"), (dict, list)):
            message += f" (got {_shown(err.get('input'))})"
    return doc.problem(path, message)


def _shown(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut short when long (a refused 200,000-character name is not printed whole)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    size = f"{len(value):,} characters" if isinstance(value, str) else f"{len(text):,} characters shown"
    return f"{text[:limit]}... ({size})"


def _strip_tags(loc: Sequence[str | int], data: Any, *, keep_missing_key: bool) -> KeyPath:
    """Drop pydantic's union-member tags (``per_purchase``, ``function-after[...]``) from an error location.

    Only a missing key's own name is kept although the file does not have it.
    """
    path: list[str | int] = []
    node = data
    for i, key in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, dict) and key in node or isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            node = node[key]
        elif not (last and keep_missing_key and isinstance(node, dict)):
            continue  # a union tag, not a key of the file
        path.append(key)
    return tuple(path)


def _suggestion(key: str, parent: KeyPath, model: type[BaseModel]) -> str:
    """'did you mean' for a typo, or where a key belongs when it is misplaced."""
    homes = _field_homes(model)
    if key in homes:
        places = sorted(homes[key], key=len)
        here = dotted(k for k in parent if isinstance(k, str))
        elsewhere = [p for p in places if p != here]
        if elsewhere:
            where = elsewhere[0] or "the top level"
            return f" here; it belongs under {where}"
        return ""
    close = difflib.get_close_matches(key, sorted(homes), n=1, cutoff=0.75)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _field_homes(model: type[BaseModel], parent: str = "", homes: dict[str, set[str]] | None = None,
                 seen: frozenset[type] = frozenset()) -> dict[str, set[str]]:
    """Every field name of the schema, with the dotted paths of the blocks it belongs to.

    Mapping keys and list items chosen by the user (segment names, list indices) are left out of the
    paths, so ``segments.regular.dropout`` is ``segments.dropout`` here.
    """
    homes = {} if homes is None else homes
    if model in seen:
        return homes
    for name, info in model.model_fields.items():
        homes.setdefault(name, set()).add(parent)
        child = f"{parent}.{name}" if parent else name
        for sub in _models_in(info.annotation):
            _field_homes(sub, child, homes, seen | {model})
    return homes


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found = []
    for arg in getattr(annotation, "__args__", ()) + tuple(getattr(annotation, "__metadata__", ())):
        found += _models_in(arg)
    return found
