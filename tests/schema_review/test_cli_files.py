"""The CLI's own directory walk and file reading give what pathlib's rglob and read_bytes gave."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from greenlight.cli.schema import _read, _sql_files


def _tree(root: Path) -> None:
    for rel, text in (("a/x.sql", "1"), ("a-b/y.sql", "2"), ("dir.sql/z.sql", "3"),
                      (".hidden.sql", ""), ("UPPER.SQL", "4"), ("a/b/c/deep.sql", "5"),
                      ("notes.txt", "6"), ("a/x.sql.bak", "7")):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    os.symlink(root / "a", root / "linked")  # a symlinked directory is not entered
    os.symlink(root / "a", root / "linked.sql")  # but is listed when its name matches


@pytest.mark.parametrize("spelling", ["plain", "trailing-slashes", "relative"])
def test_same_files_in_the_same_order_as_rglob(tmp_path, spelling, monkeypatch):
    _tree(tmp_path)
    root = {"plain": tmp_path, "trailing-slashes": Path(f"{tmp_path}//"),
            "relative": Path(os.path.relpath(tmp_path))}[spelling]
    ours = _sql_files(root)
    assert [str(p) for p in ours] == [str(p) for p in sorted(root.rglob("*.sql"))]
    assert {p.name for p in ours} == {"x.sql", "y.sql", "dir.sql", "z.sql", ".hidden.sql",
                                      "deep.sql", "linked.sql"}


def test_read_gives_the_bytes_and_the_same_errors(tmp_path):
    data = bytes(range(256)) * 5000  # more than one read's worth
    (tmp_path / "big.sql").write_bytes(data)
    assert _read(tmp_path / "big.sql") == data
    (tmp_path / "d.sql").mkdir()
    with pytest.raises(IsADirectoryError) as ours:
        _read(tmp_path / "d.sql")
    with pytest.raises(IsADirectoryError) as theirs:
        (tmp_path / "d.sql").read_bytes()
    assert ours.value.strerror == theirs.value.strerror
    with pytest.raises(FileNotFoundError):
        _read(tmp_path / "missing.sql")
