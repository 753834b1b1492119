"""Creating repositories, writing their config, and the worker-side ancestry command."""
from __future__ import annotations

import subprocess

import pytest

from greenlight.git import (
    NotARepository,
    commit_all_and_push,
    config_value,
    create_bare_repo,
    git_dir,
    is_ancestor_command,
    open_repo,
    write_config,
)
from greenlight.git.commands import IS_ANCESTOR_EXIT_CODES


def test_a_bare_repository_gets_a_first_commit_of_every_file(tmp_path):
    bare = tmp_path / "demo.git"
    create_bare_repo(bare, "trunk")
    work = tmp_path / "work"
    (work / "src").mkdir(parents=True)
    (work / "src" / "app.py").write_text("print('hi')\n")
    (work / "README.md").write_text("demo\n")
    commit_all_and_push(work, bare, "trunk", "first version", "Demo", "demo@x.invalid")
    log = subprocess.run(["git", "-C", str(bare), "log", "--format=%an <%ae> %s", "trunk"],
                         capture_output=True, text=True, check=True).stdout
    assert log == "Demo <demo@x.invalid> first version\n"
    files = subprocess.run(["git", "-C", str(bare), "ls-tree", "-r", "--name-only", "trunk"],
                           capture_output=True, text=True, check=True).stdout.split()
    assert files == ["README.md", "src/app.py"]
    assert git_dir(bare) == bare


def test_config_is_written_in_the_repository_and_errors_name_the_path(make_repo, tmp_path):
    work = make_repo()
    write_config(work.path, {"greenlight": {"url": "http://h/", "timeout": "3.0"},
                             "greenlight.schema": {"dialect": "postgres"}})
    repo = open_repo(work.path)
    assert config_value(repo, "greenlight.url") == "http://h/"
    assert config_value(repo, "greenlight.schema.dialect") == "postgres"
    assert git_dir(work.path) == work.path / ".git"
    with pytest.raises(NotARepository, match="nowhere"):
        git_dir(tmp_path / "nowhere")
    (tmp_path / "plain").mkdir()
    with pytest.raises(NotARepository):
        write_config(tmp_path / "plain", {"a": {"b": "c"}})


def test_is_ancestor_command_exits_as_documented(make_repo):
    work = make_repo()
    first = work.commit("one")
    second = work.commit("two")
    codes = [subprocess.run(is_ancestor_command(a, d), cwd=work.path,
                            capture_output=True).returncode
             for a, d in ((first, second), (second, first), ("0" * 40, second))]
    assert codes == [0, 1, 128]
    assert set(codes) == set(IS_ANCESTOR_EXIT_CODES)


def test_files_at_a_branch_and_what_cannot_be_read(make_repo, tmp_path):
    from greenlight.git import BranchUnreadable, files_at_branch

    work = make_repo()
    work.write("setup.cfg", "[coverage:run]\nrelative_files = true\n")
    work.commit("config")
    assert files_at_branch(work.path, "main", ["setup.cfg", ".coveragerc"]) == {
        "setup.cfg": "[coverage:run]\nrelative_files = true"}
    with pytest.raises(BranchUnreadable):
        files_at_branch(work.path, "no-such-branch", ["setup.cfg"])
    with pytest.raises(BranchUnreadable):
        files_at_branch(tmp_path / "missing", "main", ["setup.cfg"])
    with pytest.raises(BranchUnreadable):
        files_at_branch("https://example.invalid/repo.git", "main", ["setup.cfg"])


def test_remote_branch_sha_reads_the_tip_or_none(make_repo):
    from greenlight.git import remote_branch_sha

    work = make_repo()
    tip = work.commit("one")
    work.git("branch", "main-old")  # a ref whose name starts like the branch's
    assert remote_branch_sha(str(work.path), "main") == tip
    assert remote_branch_sha(str(work.path), "nothing") is None


def test_a_file_as_a_commit_holds_it(make_repo):
    from greenlight.git.files import file_at, work_tree

    work = make_repo()
    work.write("db/0001.sql", "CREATE TABLE t (a int);\n")
    first = work.commit("one")
    work.write("db/0001.sql", "changed in the work tree\n")
    repo = open_repo(work.path / "db")
    assert file_at(repo, first, "db/0001.sql") == b"CREATE TABLE t (a int);\n"
    with pytest.raises(KeyError):
        file_at(repo, first, "db/missing.sql")
    assert work_tree(repo) == work.path
