"""How the suite is spread over xdist's workers (tests/conftest.py)."""
from __future__ import annotations

from pathlib import Path

from tests.conftest import MODULE_SECONDS, ROOT, SHARED_WORLD_MODULES, unit_of_work


def test_the_shared_world_modules_go_to_one_worker_the_others_by_module():
    assert {unit_of_work(f"{path}::test_x[1]") for path in SHARED_WORLD_MODULES} \
        == {"shared-world"}
    assert unit_of_work("tests/db/test_db.py::TestX::test_y") == "tests/db/test_db.py"


def test_every_module_named_exists():
    """A renamed module would silently lose its world's sharing or its place in the order."""
    for path in (*SHARED_WORLD_MODULES, *MODULE_SECONDS):
        assert Path(ROOT, path).is_file(), path
