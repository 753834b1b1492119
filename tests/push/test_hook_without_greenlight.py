"""A server hook that cannot run Greenlight (a broken install, a Python without it) still
keeps the push: git's ref lines are spooled and become changes on the next working run."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import git as gitpython

from greenlight.push import spool
from greenlight.push.install import install_server
from greenlight.push.post_receive import flush_spool
from tests.conftest import GIT_ENV, free_ports, git

PYTHON_WITHOUT_GREENLIGHT = "/usr/bin/python3"


def test_a_push_through_a_hook_that_cannot_import_greenlight_is_kept_then_delivered(tmp_path):
    probe = subprocess.run([PYTHON_WITHOUT_GREENLIGHT, "-c", "import greenlight"],
                           capture_output=True)
    assert probe.returncode != 0, "the system Python must lack greenlight for this test"
    bare = tmp_path / "shop.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    secret = tmp_path / "hook.secret"
    secret.write_text("pw\n")
    [closed_port] = free_ports(1)                      # nothing listens: the master is down
    install_server(bare, url=f"http://127.0.0.1:{closed_port}/", user="hook",
                   password_file=secret, python=PYTHON_WITHOUT_GREENLIGHT, timeout=0.5)
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(bare), str(work))
    (work / "a.txt").write_text("a\n")
    git(work, "add", "a.txt")
    git(work, "commit", "-qm", "first")
    sha = git(work, "rev-parse", "HEAD").strip()
    push = subprocess.run(["git", "push", "-q", "origin", "HEAD:main"], cwd=work,
                          capture_output=True, text=True, env=GIT_ENV, timeout=60)
    assert push.returncode == 0
    assert "hook not runnable" in push.stderr and "kept in" in push.stderr
    kept = spool.raw_pending(bare / "greenlight-spool")
    assert len(kept) == 1 and kept[0].read_text().split()[1:] == [sha, "refs/heads/main"]

    # the install is fixed (here: Greenlight's own Python runs the flush): the kept update
    # becomes a change, spooled until the master takes it
    delivered, left = flush_spool(gitpython.Repo(bare))
    assert (delivered, left) == (0, 1)
    assert spool.raw_pending(bare / "greenlight-spool") == []
    [change_file] = spool.pending(bare / "greenlight-spool")
    change = json.loads(Path(change_file).read_text())
    assert change["revision"] == sha and change["branch"] == "main"
