"""The report's blame: the walk runs without -C (cheap), -C is asked of the commit it names only,
and the answer is the one a whole-file ``git blame -w -M -C`` gives."""
from __future__ import annotations

import pytest

from greenlight.git.history import GitHistory

BODY = ("def discount(order):\n"
        "    rate = order.coupon.rate if order.coupon else None\n"
        "    return order.total * (1 - rate)  # None when there is no coupon\n")
HELPERS = "\n".join(f"def helper_{n}(x):\n    return x + {n}\n" for n in range(8))


def test_code_moved_across_two_files_is_blamed_on_its_author_as_whole_file_minus_c_says(
        make_repo):
    repo = make_repo("shop")
    repo.write("app/a.py", HELPERS)
    repo.write("app/b.py", "B = 1\n")
    repo.write("app/c.py", "C = 1\n")
    repo.commit("base")
    repo.write("app/a.py", HELPERS + "\n" + BODY)
    author = repo.commit("discounts", author="Bob <bob@x>")
    repo.write("app/other.py", "X = 1\n")
    repo.commit("unrelated")
    repo.write("app/a.py", HELPERS)                    # a.py -> b.py, reindented into a class
    repo.write("app/b.py", "B = 1\n\n\nclass Pricing:\n"
               + "".join(f"    {line}\n" for line in BODY.splitlines()))
    repo.commit("move to b", author="Mo <mo@x>")
    repo.write("app/b.py", "B = 1\n")                  # b.py -> c.py, at the end of the file
    repo.write("app/c.py", "C = 1\n\n\nclass Pricing:\n"
               + "".join(f"    {line}\n" for line in BODY.splitlines()))
    last_move = repo.commit("move to c", author="Ann <ann@x>")
    line = 7                                           # "        return order.total ..."
    assert "return order.total" in repo.path.joinpath("app/c.py").read_text().splitlines()[6]

    history = GitHistory(repo.path)
    without_copies, _ = history._blame(last_move, "app/c.py", copies=False)
    assert without_copies[line].commit == last_move    # the walk alone names the mover
    found = history.blame_lines(last_move, "app/c.py", [line, 1])
    whole = GitHistory(repo.path).blame_file(last_move, "app/c.py")
    assert found[line].commit == whole[line].commit == author
    assert found[line].orig_path == whole[line].orig_path == "app/a.py"
    assert found[line].path == "app/c.py" and found[line].line == line
    assert "return order.total" in found[line].text
    assert found[1].commit == whole[1].commit          # an untouched line: the base commit


def test_a_line_older_than_the_bound_is_left_out_even_after_a_move(make_repo):
    repo = make_repo("shop")
    repo.write("app/a.py", HELPERS + "\n" + BODY)
    repo.write("app/b.py", "B = 1\n")
    old = repo.commit("base with the bug")
    repo.write("app/x.py", "X = 1\n")
    bound = repo.commit("the ledger starts here")
    repo.write("app/a.py", HELPERS)
    repo.write("app/b.py", "B = 1\n\n\n" + BODY)
    mover = repo.commit("move to b")
    history = GitHistory(repo.path)
    assert old != bound
    line = 6                                           # "    return order.total ..."
    assert history._blame(mover, "app/b.py", bound, copies=False)[0][line].commit == mover
    assert line not in history.blame_lines(mover, "app/b.py", [line], since=bound)
    assert history.blame_lines(mover, "app/b.py", [line])[line].commit == old


def test_a_merge_that_keeps_the_branch_side_of_a_line_hands_it_to_the_fork_point(make_repo):
    lines = [f"value_{n} = {n}\n" for n in range(1, 21)]
    repo = make_repo("shop")
    repo.write("app/logic.py", "".join(lines))
    fork = repo.commit("base", author="Ada <ada@x>")
    repo.git("checkout", "-q", "-b", "feature")
    repo.write("app/logic.py", "".join(lines[:15] + ["value_16 = 'feature'\n"] + lines[16:]))
    feature = repo.commit("feature", author="Fay <fay@x>")
    repo.git("checkout", "-q", "main")
    repo.write("app/logic.py", "".join(lines[:9] + ["value_10 = 'main'\n"] + lines[10:]))
    mainline = repo.commit("main changes line 10", author="Max <max@x>")
    repo.git("merge", "-q", "--no-ff", "--no-commit", "feature")
    # The merge resolves line 10 back to the fork point's text (the branch's side).
    repo.write("app/logic.py", "".join(lines[:15] + ["value_16 = 'feature'\n"] + lines[16:]))
    merge = repo.commit("Merge feature, keeping its line 10")
    history = GitHistory(repo.path)
    found = history.blame_lines(merge, "app/logic.py", [10, 16, 3])
    whole = GitHistory(repo.path).blame_file(merge, "app/logic.py")
    assert mainline not in {hit.commit for hit in found.values()}
    assert found[10].commit == whole[10].commit == fork     # not lost at the branch's edge
    assert found[16].commit == whole[16].commit == feature
    assert found[3].commit == whole[3].commit == fork


def test_answers_at_full_shas_are_shared_by_the_next_history_of_the_repository(make_repo):
    repo = make_repo("shop")
    repo.write("app/a.py", HELPERS + "\n" + BODY)
    sha = repo.commit("base")
    first = GitHistory(repo.path).blame_lines(sha, "app/a.py", [18])
    assert first[18].commit == sha

    class NoGit:
        def execute(self, *args, **kwargs):
            raise AssertionError("git ran again for an answer already known")

    text_reader = GitHistory(repo.path).file_at       # the line's text is read each time
    again = GitHistory(repo.path)
    again._git = NoGit()
    again.file_at = text_reader
    again.ignore_revs = lambda at: []
    assert again.blame_lines(sha, "app/a.py", [18]) == first
    by_name = GitHistory(repo.path)                    # a branch name moves: not shared
    by_name._git = NoGit()
    by_name.ignore_revs = lambda at: []
    by_name.file_at = text_reader
    with pytest.raises(AssertionError, match="git ran again"):
        by_name.blame_lines("main", "app/a.py", [18])
