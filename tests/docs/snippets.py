"""Find the code blocks of the README and docs/ that the docs tests run.

A fenced block whose language is a shell (sh, bash, shell) or Python is a snippet. A comment
``<!-- no-test: why -->`` on the line before its fence skips it: the reason is required, and
the skipped blocks are counted so that a reader of the test output sees how many there are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
SHELLS = {"sh", "bash", "shell"}
PYTHONS = {"python", "py"}
NO_TEST = re.compile(r"^<!--\s*no-test:\s*(?P<reason>.*?)\s*-->$")
FENCE = re.compile(r"^```(?P<lang>[\w+-]*)\s*$")
# A Python snippet whose first line names a file under tests/ is a file the reader saves there;
# the shell snippet after it runs it.
SAVED_AS = re.compile(r"^# (?P<path>[\w/]+\.py)$")


@dataclass(frozen=True)
class Snippet:
    path: Path
    line: int
    lang: str
    code: str
    skip_reason: str | None

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def kind(self) -> str | None:
        if self.lang in SHELLS:
            return "sh"
        if self.lang in PYTHONS:
            return "python"
        return None

    @property
    def saved_as(self) -> str | None:
        match = SAVED_AS.match(self.code.split("\n", 1)[0])
        return match["path"] if match and self.kind == "python" else None


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def blocks(path: Path) -> list[Snippet]:
    """Every fenced block of a Markdown file, with the skip reason written before it."""
    found: list[Snippet] = []
    lines = path.read_text(encoding="utf-8").split("\n")
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        start = index
        index += 1
        while index < len(lines) and lines[index] != "```":
            index += 1
        before = lines[start - 1].strip() if start else ""
        marker = NO_TEST.match(before)
        found.append(
            Snippet(
                path=path,
                line=start + 1,
                lang=opening["lang"],
                code="\n".join(lines[start + 1 : index]) + "\n",
                skip_reason=marker["reason"] if marker else None,
            )
        )
        index += 1
    return found


def all_blocks() -> list[Snippet]:
    return [block for path in documents() for block in blocks(path)]


def snippets() -> list[Snippet]:
    """The shell and Python blocks, in reading order (README first, then docs/ by name)."""
    return [block for block in all_blocks() if block.kind]
