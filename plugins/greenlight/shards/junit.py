"""Read JUnit XML as pytest writes it: node ids, outcomes, durations and failure text.

JUnit XML is the one result format every CI understands, so durations, flaky reruns and the
shard union check all start from it. pytest's ``xunit2`` family (its default) drops the ``file``
attribute, so the node id is rebuilt from the dotted ``classname``; pass ``rootdir`` to resolve
module paths against real files when names are ambiguous.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from greenlight.errors import UsageError

PASSED, FAILED, ERROR, SKIPPED = "passed", "failed", "error", "skipped"


@dataclass(frozen=True)
class TestResult:
    """One executed test case."""

    __test__ = False  # not a pytest test class despite the name

    test_id: str
    outcome: str  # passed | failed | error | skipped
    seconds: float
    message: str = ""

    @property
    def failed(self) -> bool:
        return self.outcome in (FAILED, ERROR)


def parse_junit_file(path: str | Path, rootdir: str | Path | None = None) -> list[TestResult]:
    """Parse one JUnit XML file; raises UsageError naming the file when it is not JUnit XML."""
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read JUnit XML ({exc.strerror})") from exc
    return parse_junit(text, rootdir=rootdir, source=str(path))


def parse_junit(text: str | bytes, rootdir: str | Path | None = None,
                source: str = "<junit>") -> list[TestResult]:
    """Parse JUnit XML text into results, one per ``<testcase>``, in document order."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        line = exc.position[0] if getattr(exc, "position", None) else "?"
        raise UsageError(f"{source}:{line}: not valid XML ({exc}); pass the file pytest "
                         "wrote with --junitxml") from exc
    if root.tag not in ("testsuites", "testsuite"):
        raise UsageError(f"{source}: root element is <{root.tag}>, expected <testsuites> or "
                         "<testsuite> (a JUnit XML report)")
    results = []
    for case in root.iter("testcase"):
        test_id = node_id(case.get("classname", ""), case.get("name", ""), case.get("file"),
                          rootdir)
        outcome, message = PASSED, ""
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = FAILED if child.tag == "failure" else ERROR
                message = _text_of(child)
                break
            if child.tag == "skipped":
                outcome, message = SKIPPED, _text_of(child)
        try:
            seconds = float(case.get("time") or 0.0)
        except ValueError:
            seconds = 0.0
        results.append(TestResult(test_id, outcome, max(seconds, 0.0), message))
    return merge_phases(results)


def merge_phases(results: Iterable[TestResult]) -> list[TestResult]:
    """pytest writes a second ``<testcase>`` when teardown errors after a pass: keep one per id,
    the worst outcome and the summed time."""
    rank = {PASSED: 0, SKIPPED: 1, FAILED: 2, ERROR: 3}
    merged: dict[str, TestResult] = {}
    for r in results:
        prev = merged.get(r.test_id)
        if prev is None:
            merged[r.test_id] = r
            continue
        worst = r if rank[r.outcome] > rank[prev.outcome] else prev
        merged[r.test_id] = TestResult(r.test_id, worst.outcome, prev.seconds + r.seconds,
                                       worst.message)
    return list(merged.values())


def node_id(classname: str, name: str, file: str | None = None,
            rootdir: str | Path | None = None) -> str:
    """Rebuild pytest's node id from JUnit's dotted classname and name.

    pytest writes ``classname = "tests.pkg.test_mod.TestClass"`` for node id
    ``tests/pkg/test_mod.py::TestClass::test_x``. Resolution order: the ``file`` attribute
    (xunit1), an existing ``.py`` file under ``rootdir``, then the naming convention that test
    classes start with a capital letter.
    """
    if not classname:
        return name
    parts = classname.split(".")
    module_len, module_path = None, None
    if file:
        dotted = file[:-3].replace("/", ".") if file.endswith(".py") else file
        if classname == dotted or classname.startswith(dotted + "."):
            module_len = len(dotted.split("."))
            module_path = file
    if module_len is None and rootdir is not None:
        base = Path(rootdir)
        for k in range(len(parts), 0, -1):
            if (base.joinpath(*parts[:k - 1], parts[k - 1] + ".py")).is_file():
                module_len = k
                break
    if module_len is None:
        module_len = len(parts)
        while module_len > 1 and parts[module_len - 1][:1].isupper():
            module_len -= 1
    if module_path is None:
        module_path = "/".join(parts[:module_len]) + ".py"
    return "::".join([module_path, *parts[module_len:], name])


def _text_of(element: ET.Element) -> str:
    message = element.get("message") or ""
    body = (element.text or "").strip()
    return f"{message}\n{body}".strip() if body and body != message else message or body
