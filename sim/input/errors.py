"""Bad input: every problem names the file (or ``--set``), the key path and, where the YAML gives it, the
line; the CLI prints them and exits with status 2."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where and what."""

    source: str
    path: KeyPath
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        key = dotted(self.path)
        return f"{where}: {key}: {self.message}" if key else f"{where}: {self.message}"


class InputError(Exception):
    """Bad input: the CLI prints the problems and exits with status 2."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def dotted(path: Iterable[str | int]) -> str:
    return ".".join(str(k) for k in path)
