"""YAML files read into plain values with the line of every key (``docs/scenarios.md``, "Bad input").

YAML is read with PyYAML's safe composer and the YAML 1.2 core schema (:mod:`sim.input.yaml12`: ``044`` is
44, ``1e-3`` a number, ``yes`` and ``1:00`` strings); tags other than the plain YAML types (``!!python/…``
above all) are refused, and so are duplicate keys, which PyYAML would otherwise silently overwrite, and documents
that expand to far more values than a scenario has (alias bombs).

A file may start from another: ``extends: base.yaml`` (a path relative to the file) makes the document the
base deep-merged with the file's own keys (mappings merged key by key, lists and scalars replaced). Every key
keeps the file and line it was written at, so that a problem with a value from the base names the base file.
"""

from __future__ import annotations

import copy
import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sim.input.errors import InputError, KeyPath, Problem, dotted
from sim.input.yaml12 import CoreSchemaLoader, ScalarError, scalar

_PLAIN_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq")}
_MAX_NODES = 200_000  # a scenario has hundreds of nodes; far more means an alias bomb
_MAX_BYTES = 5_000_000


@dataclass
class Document:
    """A YAML mapping read into plain Python values, with the line of every key."""

    source: str
    data: dict[str, Any]
    lines: dict[KeyPath, int] = field(default_factory=dict)
    overridden: set[KeyPath] = field(default_factory=set)
    #: The file each key was written in, where it is not ``source`` (keys from an ``extends:`` base).
    sources: dict[KeyPath, str] = field(default_factory=dict)

    def source_of(self, path: KeyPath) -> str:
        """The file that wrote the deepest key of ``path`` the document has (``source`` by default)."""
        for depth in range(len(path), 0, -1):
            if path[:depth] in self.lines:
                return self.sources.get(path[:depth], self.source)
        return self.source

    def line_of(self, path: KeyPath) -> int | None:
        """Line of the deepest key of ``path`` that the file has (None for --set keys)."""
        for depth in range(len(path), 0, -1):
            prefix = path[:depth]
            if prefix in self.overridden:
                return None
            if prefix in self.lines:
                return self.lines[prefix]
        return None

    def problem(self, path: KeyPath, message: str) -> Problem:
        if any(path[:d] in self.overridden for d in range(1, len(path) + 1)):
            return Problem("--set", path, message)
        inside = sorted(dotted(p) for p in self.overridden if path and p[:len(path)] == path)
        if inside:   # a problem of a whole block (its size, say) that a --set value inside it caused
            return Problem("--set", path, f"{message} (caused by {', '.join(inside)})")
        return Problem(self.source_of(path), path, message, self.line_of(path))


def read_yaml(path: str | os.PathLike[str], _chain: tuple[str, ...] = ()) -> Document:
    """Read a YAML file whose top level is a mapping, refusing what the safe loader would let slip, merged
    onto the file its ``extends:`` names (and so on down the chain; a cycle is refused)."""
    doc = _read_one(path)
    if "extends" not in doc.data:
        return doc
    base_name = doc.data.pop("extends")
    if not isinstance(base_name, str) or not base_name.strip():
        raise InputError([doc.problem(("extends",), "must be the path of a YAML file (relative to this one)")])
    target = Path(base_name) if Path(base_name).is_absolute() else Path(path).parent / base_name
    chain = (*_chain, os.path.realpath(path))
    if os.path.realpath(target) in chain:
        raise InputError([doc.problem(("extends",), f"{target} extends this file again: extends: cannot form "
                                                    "a cycle")])
    if not is_file(target):
        raise InputError([doc.problem(("extends",), f"{target}: no such file")])
    return merged(read_yaml(target, chain), doc)


def merged(base: Document, own: Document) -> Document:
    """``base`` deep-merged with ``own``'s keys, each key keeping the file and line that wrote it."""
    result = Document(own.source, {}, {}, set(base.overridden) | set(own.overridden))
    for path, line in base.lines.items():
        result.lines[path] = line
        result.sources[path] = base.sources.get(path, base.source)
    result.data = _merge(base.data, own, (), result)
    return result


def _merge(base: Any, own_doc: Document, path: KeyPath, result: Document) -> Any:
    own = own_doc.data
    for key in path:
        own = own[key]
    if not (isinstance(base, dict) and isinstance(own, dict)):
        for known in [p for p in result.lines if p[: len(path)] == path and len(p) > len(path)]:
            del result.lines[known]
            result.sources.pop(known, None)
        for known, line in own_doc.lines.items():
            if known[: len(path)] == path and len(known) > len(path):
                result.lines[known] = line
                result.sources.pop(known, None)
        return copy.deepcopy(own)
    value = dict(base)
    for key in own:
        if path + (key,) in own_doc.lines:
            result.lines[path + (key,)] = own_doc.lines[path + (key,)]
            result.sources.pop(path + (key,), None)
        value[key] = _merge(base[key], own_doc, path + (key,), result) if key in base else \
            _merge(None, own_doc, path + (key,), result)
    return value


def _read_one(path: str | os.PathLike[str]) -> Document:
    source = str(path)
    text = _read_text(Path(path), source)
    node = _compose(text, source)
    if node is None:
        raise InputError([Problem(source, (), "the file holds no YAML document (it is empty)")])
    if not isinstance(node, yaml.MappingNode):
        raise InputError([Problem(source, (), "the top level must be a mapping of keys to values",
                                  node.start_mark.line + 1)])
    doc = Document(source, {})
    doc.data = _value(node, (), doc)
    return doc


def read_value(text: str, source: str, path: KeyPath) -> Any:
    """One value written as YAML (a ``--set`` value), read by the same rules as a file's values."""
    node = _compose(text, source)
    return None if node is None else _value(node, path, Document(source, {}))


def _compose(text: str, source: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=CoreSchemaLoader)
    except RecursionError:
        raise InputError([Problem(source, (), "the YAML is nested too deeply", _deepest_line(text))]) from None
    except yaml.reader.ReaderError as exc:   # a character YAML does not allow: its position, not a mark
        line = text.count("\n", 0, exc.position) + 1 if isinstance(exc.position, int) else None
        raise InputError([Problem(source, (), f"not valid YAML: {exc}".split("\n")[0], line)]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise InputError([Problem(source, (), f"not valid YAML: {exc.problem or exc}", line)]) from None
    except yaml.YAMLError as exc:
        raise InputError([Problem(source, (), f"not valid YAML: {exc}")]) from None


def _deepest_line(text: str) -> int | None:
    """The line where the text's nesting is deepest, found by the scanner (which does not recurse)."""
    depth, deepest, line = 0, 0, None
    opening = (yaml.BlockMappingStartToken, yaml.BlockSequenceStartToken, yaml.FlowMappingStartToken,
               yaml.FlowSequenceStartToken)
    closing = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)
    try:
        for token in yaml.scan(text, Loader=CoreSchemaLoader):
            if isinstance(token, opening):
                depth += 1
                if depth > deepest:
                    deepest, line = depth, token.start_mark.line + 1
            elif isinstance(token, closing):
                depth -= 1
    except yaml.YAMLError:
        pass
    return line


def _value(node: yaml.Node, path: KeyPath, doc: Document) -> Any:
    try:
        return _to_python(node, path, doc, [0], set())
    except RecursionError:
        line = max(doc.lines.values(), default=node.start_mark.line + 1)
        raise InputError([Problem(doc.source, path, "the YAML is nested too deeply", line)]) from None


def is_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names an existing file; False too where the name itself is unusable (too long)."""
    try:
        return Path(path).is_file()
    except OSError:
        return False


def _read_text(path: Path, source: str) -> str:
    """The file's text; anything that is not a readable regular file of reasonable size is refused.

    The file is opened without blocking and checked with ``fstat`` before a byte is read: a named pipe
    would otherwise wait forever for a writer, and ``/dev/zero`` never ends.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise InputError([Problem(source, (), "no such file")]) from None
    except PermissionError:
        raise InputError([Problem(source, (), "cannot be read (permission denied)")]) from None
    except OSError as exc:
        reason = _OPEN_ERRORS.get(exc.errno, exc.strerror or str(exc))
        raise InputError([Problem(source, (), f"cannot be opened: {reason}")]) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise InputError([Problem(source, (), f"is {_kind(info.st_mode)}, not a YAML file")])
    with os.fdopen(fd, "rb") as file:
        if info.st_size > _MAX_BYTES:
            raise InputError([Problem(source, (), f"is {info.st_size:,} bytes; a scenario file is far smaller")])
        try:
            raw = file.read(_MAX_BYTES + 1)   # the size can change after fstat
        except OSError as exc:
            raise InputError([Problem(source, (), f"cannot be read: {exc.strerror or exc}")]) from None
    if len(raw) > _MAX_BYTES:
        raise InputError([Problem(source, (), f"is over {_MAX_BYTES:,} bytes; a scenario file is far smaller")])
    if b"\x00" in raw:
        raise InputError([Problem(source, (), "is a binary file, not YAML text")])
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise InputError([Problem(source, (), f"is not UTF-8 text (byte {exc.start})", line)]) from None


_OPEN_ERRORS = {
    errno.ENOTDIR: "a part of the path is a file, not a directory",
    errno.ELOOP: "the symbolic links form a loop",
    errno.ENAMETOOLONG: "the name is too long for the file system",
}


def _kind(mode: int) -> str:
    """What a file that is not a regular file is, for the message."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def _to_python(node: yaml.Node, path: KeyPath, doc: Document, count: list[int], open_nodes: set[int]) -> Any:
    """Plain values from a composed node, recording key lines; ``open_nodes`` are the ones being built."""
    count[0] += 1
    line = node.start_mark.line + 1
    if count[0] > _MAX_NODES:
        top = path[:1]
        raise InputError([Problem(doc.source, top, "the YAML expands to too many values (aliases?)",
                                  doc.lines.get(top, line))])
    if id(node) in open_nodes:
        raise InputError([Problem(doc.source, path, "an alias refers to the value that contains it", line)])
    if node.tag not in _PLAIN_TAGS:
        what = "python tags are refused" if "python" in node.tag else "only plain YAML values are accepted"
        raise InputError([Problem(doc.source, path, f"tag {node.tag!r}: {what}", line)])
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
        open_nodes.add(id(node))
        try:
            return _collection(node, path, doc, count, open_nodes)
        finally:
            open_nodes.discard(id(node))
    try:
        return scalar(node)
    except ScalarError as exc:
        raise InputError([Problem(doc.source, path, str(exc), line)]) from None


def _collection(node: yaml.Node, path: KeyPath, doc: Document, count: list[int], open_nodes: set[int]) -> Any:
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _to_python(key_node, path, doc, count, open_nodes)
            key_line = key_node.start_mark.line + 1
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise InputError([Problem(doc.source, path, f"keys must be names, not {key!r}", key_line)])
            if key in result:
                first = doc.lines.get((*path, key))
                raise InputError([Problem(doc.source, (*path, key),
                                          f"duplicate key (first given on line {first})", key_line)])
            doc.lines[(*path, key)] = key_line
            result[key] = _to_python(value_node, (*path, key), doc, count, open_nodes)
        return result
    items = []
    for i, item in enumerate(node.value):
        doc.lines[(*path, i)] = item.start_mark.line + 1
        items.append(_to_python(item, (*path, i), doc, count, open_nodes))
    return items
