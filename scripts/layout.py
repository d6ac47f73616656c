"""Prints the package's tree, one line per module: path, lines, and the first sentence of its docstring.

    python scripts/layout.py > /tmp/tree.md      # what docs/architecture.md's tree is made from
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    for path in sorted((ROOT / "sim").rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        text = path.read_text()
        paragraph = (ast.get_docstring(ast.parse(text)) or "").strip().split("\n\n")[0]
        sentence = " ".join(paragraph.split()).split(". ")[0].rstrip(".")
        print(f"| `{path.relative_to(ROOT)}` | {len(text.splitlines())} | {sentence} |")


if __name__ == "__main__":
    main()
