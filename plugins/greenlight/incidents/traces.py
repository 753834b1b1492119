"""Turn stack-trace text into frames and map each frame onto a file of the repository.

Production paths look like ``/srv/app/releases/<sha>/app/logic.py``; the repository says
``app/logic.py``. The longest common path suffix decides, and a tie is refused rather than guessed.
"""
from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import replace

from greenlight.incidents.model import Frame

# Python:   File "/srv/app/logic.py", line 42, in login
_PYTHON_FRAME = re.compile(r'^\s*File "(?P<path>[^"]+)", line (?P<line>\d+)(?:, in (?P<func>\S+))?')
# Generic:  app/logic.py:42   at app/logic.py:42:7   (app/logic.py:42)
_FILE_LINE = re.compile(
    r'(?<![\w/.\\-])(?P<path>(?:[A-Za-z]:)?[\w./\\-]*[\w-]\.[A-Za-z][\w]{0,9})'
    r':(?P<line>\d+)(?![\d])')


def parse_frames(text: str) -> list[Frame]:
    """Frames in the order the trace prints them (outermost first, for Python tracebacks).

    Python ``File "...", line N`` frames are read first; a line holding none of them is scanned
    for ``path:line`` forms (pytest, linters, other languages' traces).
    """
    frames: list[Frame] = []
    for raw in text.splitlines():
        match = _PYTHON_FRAME.match(raw)
        if match:
            frames.append(Frame(path=match["path"], line=int(match["line"]),
                                function=match["func"]))
            continue
        if "://" in raw:
            raw = re.sub(r"\w+://\S+", " ", raw)   # URLs carry host:port, not files
        for found in _FILE_LINE.finditer(raw):
            line = int(found["line"])
            if line > 0:
                frames.append(Frame(path=found["path"], line=line))
    return [replace(f, index=i) for i, f in enumerate(frames)]


def _parts(path: str) -> list[str]:
    return [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]


class PathMatcher:
    """Index of repository paths by basename, answering "which repo file is this frame?"."""

    def __init__(self, repo_paths: Iterable[str]):
        self._by_name: dict[str, list[tuple[str, list[str]]]] = defaultdict(list)
        for path in repo_paths:
            parts = _parts(path)
            if parts:
                self._by_name[parts[-1]].append((path, parts))

    def match(self, frame_path: str) -> str | None:
        """The repo path sharing the longest suffix with ``frame_path``; None if none or a tie.

        One path must be a suffix of the other (component-wise), so ``/usr/lib/json/decoder.py``
        never maps onto ``app/decoder.py``.
        """
        parts = _parts(frame_path)
        if not parts:
            return None
        best: list[tuple[int, str]] = []
        for path, repo_parts in self._by_name.get(parts[-1], ()):
            common = 0
            for a, b in zip(reversed(parts), reversed(repo_parts)):
                if a != b:
                    break
                common += 1
            if common < min(len(parts), len(repo_parts)):
                continue
            best.append((common, path))
        if not best:
            return None
        best.sort(reverse=True)
        if len(best) > 1 and best[0][0] == best[1][0]:
            return None
        return best[0][1]


# Installed code, whatever the repository holds: a virtualenv, site-packages, the interpreter.
_LIBRARY = re.compile(r"(^|[/\\])(site-packages|dist-packages|\.?venv|\.tox|\.nox|"
                      r"lib[/\\]python\d[\d.]*|<frozen [^>]*>|<string>)([/\\]|$)")


def is_library(path: str) -> bool:
    """A frame of installed code (virtualenv, site-packages, the standard library)."""
    return bool(_LIBRARY.search(path)) or path.startswith("<")


def map_frames(frames: list[Frame], repo_paths: Iterable[str]) -> tuple[list[Frame], list[Frame]]:
    """Split frames into (mapped onto the repository, not ours); mark the innermost mapped one
    and each mapped frame's depth (0 = innermost). Library frames are never mapped, even when
    the repository holds a file of the same name (the repository of a library itself)."""
    matcher = PathMatcher(repo_paths)
    mapped, unmapped = [], []
    for frame in frames:
        if is_library(frame.path):
            unmapped.append(replace(frame, library=True))
            continue
        target = matcher.match(frame.path)
        if target is None:
            unmapped.append(frame)
        else:
            mapped.append(replace(frame, repo_path=target))
    mapped = [replace(f, depth=len(mapped) - 1 - i, innermost=(i == len(mapped) - 1))
              for i, f in enumerate(mapped)]
    return mapped, unmapped
