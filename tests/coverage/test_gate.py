"""The engine end to end: real repositories, real ``coverage run``, coverage of new lines."""
from __future__ import annotations

import os

import pytest
from greenlight.coverage import diff_coverage
from greenlight.errors import UsageError

BASE_LIB = "def kept(x):\n    return x\n"


def project(make_repo, run_coverage):
    """A repo whose tests are ``run_tests.py``; returns (repo, base sha, measure())."""
    repo = make_repo()
    repo.write("lib.py", BASE_LIB)
    repo.write("run_tests.py", "import lib\nassert lib.kept(1) == 1\n")
    base = repo.commit("base")

    def measure(*args: str) -> None:
        run_coverage(repo.path, *(args or ("run_tests.py",)))

    return repo, base, measure


def by_path(report):
    return {f.path: f for f in report.files}


def test_added_function_untested_fails_with_its_lines(make_repo, run_coverage):
    repo, base, measure = project(make_repo, run_coverage)
    repo.write("lib.py", BASE_LIB + "\n\ndef added(x):\n    y = x * 2\n    return y\n")
    repo.commit("add function", author="Bob Builder <bob@example.com>")
    measure()
    report = diff_coverage(repo.path, base, repo.head())
    lib = by_path(report)["lib.py"]
    assert lib.measure.statements == [5, 6, 7] and lib.measure.missing == [6, 7]
    assert not report.passed and report.percent == pytest.approx(33.33)
    origin = lib.origin_of(6)
    assert (origin.author, origin.email, origin.commit) == ("Bob Builder", "bob@example.com",
                                                            repo.head())
    # adding the test makes the next push green
    test_base = repo.head()
    repo.write("run_tests.py", "import lib\nassert lib.kept(1) == 1\nassert lib.added(2) == 4\n")
    repo.commit("test it")
    measure()
    assert diff_coverage(repo.path, base, repo.head()).passed
    assert diff_coverage(repo.path, test_base, repo.head()).passed


def test_modified_lines_only(make_repo, run_coverage):
    repo, base, measure = project(make_repo, run_coverage)
    repo.write("lib.py", BASE_LIB + "\n\ndef never(x):\n    return x\n")
    base = repo.commit("untested code already in base")
    repo.write("lib.py", BASE_LIB.replace("return x", "return x + 0") +
               "\n\ndef never(x):\n    return x\n")
    repo.commit("modify a tested line")
    measure()
    report = diff_coverage(repo.path, base, repo.head())
    assert by_path(report)["lib.py"].measure.statements == [2]
    assert report.passed and report.units == (1, 1)


def test_renamed_file_with_and_without_edits(make_repo, run_coverage):
    repo, base, measure = project(make_repo, run_coverage)
    lib_body = BASE_LIB + "".join(f"\n\ndef u{i}(x):\n    return x + {i}\n" for i in range(8))
    repo.write("lib.py", lib_body)
    base = repo.commit("untested helpers")
    repo.git("mv", "lib.py", "renamed.py")
    repo.write("run_tests.py", "import renamed\nassert renamed.kept(1) == 1\n")
    moved = repo.commit("rename only")
    measure()
    report = diff_coverage(repo.path, base, moved)
    assert "renamed.py" not in by_path(report)  # untested helpers were not written by this push
    assert report.passed
    repo.write("renamed.py", lib_body.replace("return x + 3", "return x - 3"))
    repo.commit("edit after move")
    measure()
    report = diff_coverage(repo.path, base, repo.head())
    renamed = by_path(report)["renamed.py"]
    assert renamed.old_path == "lib.py" and renamed.measure.missing == [18]
    assert renamed.measure.statements == [18]
    assert renamed.origin_of(18).summary == "edit after move"


def test_deleted_file_counts_nothing(make_repo, run_coverage):
    repo, base, measure = project(make_repo, run_coverage)
    repo.write("extra.py", "def z():\n    return 0\n")
    base = repo.commit("extra")
    os.remove(repo.path / "extra.py")
    repo.commit("delete")
    measure()
    report = diff_coverage(repo.path, base, repo.head())
    assert report.files == [] and report.passed


def test_only_comments_and_docstrings_changed_passes_and_says_so(make_repo, run_coverage):
    repo, base, measure = project(make_repo, run_coverage)
    repo.write("lib.py", "def kept(x):\n    \"\"\"Doc.\n\n    More doc.\n    \"\"\"\n"
                         "    # a comment\n\n    return x\n")
    repo.commit("docs")
    measure()
    report = diff_coverage(repo.path, base, repo.head())
    assert report.new_statements == 0 and report.passed
    assert report.summary() == "no new executable lines: nothing to cover"
    assert [s.reason for s in report.skipped] == ["no new executable lines"]


def test_multiline_statement_counts_once_as_its_first_line(make_repo, run_coverage):
    repo, base, measure = project(make_repo, run_coverage)
    repo.write("lib.py", BASE_LIB + "\n\ndef total(a):\n    return sum([\n        a,\n"
                                    "        2,\n    ])\n")
    base = repo.commit("multi-line statement")
    repo.write("lib.py", BASE_LIB + "\n\ndef total(a):\n    return sum([\n        a,\n"
                                    "        3,\n    ])\n")  # only the 3rd line changes
    repo.commit("change a continuation line")
    measure()
    lib = by_path(diff_coverage(repo.path, base, repo.head()))["lib.py"]
    assert lib.measure.statements == [6] and lib.measure.missing == [6]
    assert lib.measure.changed_in == {6: [8]}
    repo.write("lib.py", BASE_LIB + "\n\ndef total(a):\n    return max([\n        a,\n"
                                    "        4,\n    ])\n")  # two lines of one statement
    repo.commit("change two lines of it")
    measure()
    lib = by_path(diff_coverage(repo.path, base, repo.head()))["lib.py"]
    assert lib.measure.statements == [6] and lib.measure.changed_in == {6: [6, 8]}


def test_new_branch_partially_covered_is_reported_and_fails(make_repo, run_coverage):
    repo, base, measure = project(make_repo, run_coverage)
    repo.write("lib.py", BASE_LIB + "\n\ndef sign(x):\n    if x > 0:\n        x = 1\n"
                                    "    return x\n")
    repo.write("run_tests.py", "import lib\nassert lib.kept(1) == 1\nassert lib.sign(5) == 1\n")
    repo.commit("branch")
    measure()
    report = diff_coverage(repo.path, base, repo.head())
    lib = by_path(report)["lib.py"]
    assert lib.measure.missing == []        # every new line ran ...
    assert lib.measure.partial == {6: [8]}  # ... but the if never skipped to line 8
    assert (lib.measure.branches, lib.measure.branches_covered) == (2, 1)
    assert not report.passed
    data = report.to_dict()
    assert data["totals"]["partial_branches"] == 1
    assert data["files"][0]["partial"][0]["missing_destinations"] == [8]


def test_pragma_no_cover_and_exclude_lines(make_repo, run_coverage):
    repo, base, measure = project(make_repo, run_coverage)
    repo.write("pyproject.toml", "[tool.coverage.report]\nexclude_lines = "
                                 "['pragma: no cover', 'raise NotImplementedError']\n")
    repo.write("lib.py", BASE_LIB + "\n\ndef debug():  # pragma: no cover\n    print('x')\n"
                                    "\n\ndef todo():\n    raise NotImplementedError\n")
    repo.commit("excluded code")
    measure()
    report = diff_coverage(repo.path, base, repo.head())
    lib = by_path(report)["lib.py"]
    assert lib.measure.statements == [9] and lib.measure.missing == []  # `def todo` ran
    assert report.passed


def test_omit_patterns_and_source_scope(make_repo, run_coverage):
    repo, base, measure = project(make_repo, run_coverage)
    repo.write(".coveragerc", "[run]\nomit =\n    generated/*\n")
    repo.write("generated/stubs.py", "def g():\n    return 1\n")
    repo.commit("generated code")
    measure()
    report = diff_coverage(repo.path, base, repo.head())
    assert report.files == [] and report.passed
    assert [(s.path, s.reason) for s in report.skipped] == [
        ("generated/stubs.py", "omitted by the coverage configuration")]
    # with an explicit --config that lacks the omit, the same file counts and fails
    (repo.path / "plain.ini").write_text("[run]\nbranch = true\n")
    report = diff_coverage(repo.path, base, repo.head(), config_file=repo.path / "plain.ini")
    assert report.units == (0, 2) and not report.passed
    assert report.files[0].measure.note == "never imported while coverage was measuring"


def test_threshold_edge_exactly_equal_passes(make_repo, run_coverage):
    repo, base, measure = project(make_repo, run_coverage)
    repo.write("lib.py", BASE_LIB + "\n\ndef a():\n    return 1\n\n\ndef b():\n    return 2\n")
    repo.write("run_tests.py", "import lib\nassert lib.kept(1) == 1\nassert lib.a() == 1\n")
    repo.commit("half tested")
    measure()
    report = diff_coverage(repo.path, base, repo.head(), fail_under=75.0)
    assert report.units == (4, 5)  # 80%: the 2 defs, a's body, run_tests' new line; not b's body
    assert diff_coverage(repo.path, base, repo.head(), fail_under=80.0).passed
    assert not diff_coverage(repo.path, base, repo.head(), fail_under=80.01).passed


def test_first_push_measures_the_whole_tree(make_repo, run_coverage):
    repo, _, measure = project(make_repo, run_coverage)
    measure()
    report = diff_coverage(repo.path, None, repo.head())
    assert report.base is None and report.units == (4, 4) and report.passed


def test_merge_commit_in_range(make_repo, run_coverage):
    repo, base, measure = project(make_repo, run_coverage)
    repo.git("checkout", "-q", "-b", "feature")
    repo.write("feat.py", "def feat():\n    return 1\n")
    repo.commit("feature", author="Fay Feature <fay@example.com>")
    repo.git("checkout", "-q", "main")
    repo.write("lib.py", BASE_LIB + "\n\ndef mainline():\n    return 2\n")
    repo.commit("main", author="Mo Main <mo@example.com>")
    repo.git("merge", "-q", "--no-edit", "feature")
    measure()
    report = diff_coverage(repo.path, base, repo.head())
    files = by_path(report)
    assert files["feat.py"].measure.missing == [1, 2]  # never imported
    assert files["lib.py"].measure.missing == [6]
    assert files["feat.py"].origin_of(2).author == "Fay Feature"  # blame across the merge
    assert files["lib.py"].origin_of(6).author == "Mo Main"


def test_non_utf8_path_is_reported_not_crashed(make_repo, run_coverage):
    repo, base, measure = project(make_repo, run_coverage)
    repo.write(b"caf\xe9.py", "x = 1\n")
    repo.commit("latin-1 file name")
    measure()
    report = diff_coverage(repo.path, base, repo.head())
    (cafe,) = report.files
    assert os.fsencode(cafe.path) == b"caf\xe9.py" and cafe.measure.missing == [1]
    assert report.to_dict()["files"][0]["path"] == "caf\\xe9.py"


def test_bad_inputs_say_what_to_do(make_repo, run_coverage, tmp_path):
    repo, base, measure = project(make_repo, run_coverage)
    repo.write("lib.py", BASE_LIB + "y = 1\n")
    repo.commit("more")
    with pytest.raises(UsageError, match="no coverage data at .*run the tests under coverage"):
        diff_coverage(repo.path, base, repo.head())
    with pytest.raises(UsageError, match="unknown head revision"):
        diff_coverage(repo.path, base, "f" * 40)
    # data measured in another checkout (absolute paths elsewhere)
    other = make_repo("elsewhere")
    other.write("lib.py", BASE_LIB)
    other.write("run_tests.py", "import lib\n")
    run_coverage(other.path, "run_tests.py")
    with pytest.raises(UsageError, match="recorded in another tree"):
        diff_coverage(repo.path, base, repo.head(), data_file=other.path / ".coverage")
    # data from another version of the file
    repo.write("lib.py", "\n" * 30 + "z = 1\n")
    repo.write("run_tests.py", "import lib\n")
    measure()
    repo.git("checkout", "-q", "--", "run_tests.py")
    repo.git("checkout", "-q", "--", "lib.py")
    with pytest.raises(UsageError, match="older than 'lib.py'.*re-run the tests"):
        diff_coverage(repo.path, base, repo.head())   # lib.py was restored after the run
    os.utime(repo.path / "lib.py", ns=(0, 0))           # even when the times say otherwise
    with pytest.raises(UsageError, match="another version of lib.py"):
        diff_coverage(repo.path, base, repo.head())
    # a work tree that is not head
    repo.write("lib.py", BASE_LIB + "y = 2\n")
    with pytest.raises(UsageError, match="differs from head"):
        diff_coverage(repo.path, base, repo.head())


def test_parallel_data_files_not_combined(make_repo, run_coverage):
    repo, base, measure = project(make_repo, run_coverage)
    repo.write("lib.py", BASE_LIB + "y = 1\n")
    repo.commit("more")
    measure("--parallel-mode", "run_tests.py")
    with pytest.raises(UsageError, match="run `coverage combine`"):
        diff_coverage(repo.path, base, repo.head())
    measure("--parallel-mode", "run_tests.py")  # a second piece: combine folds both
    assert len(list(repo.path.glob(".coverage.*"))) == 2
    report = diff_coverage(repo.path, base, repo.head(), combine=True)
    assert report.units == (1, 1) and not list(repo.path.glob(".coverage.*"))
    assert (repo.path / ".coverage").is_file()


def test_blame_names_each_author_in_a_multi_commit_range(make_repo, run_coverage):
    repo, base, measure = project(make_repo, run_coverage)
    repo.write("a.py", "def a():\n    return 1\n")
    first = repo.commit("a", author="Ann <ann@example.com>")
    repo.write("b.py", "def b():\n    return 2\n")
    repo.write("a.py", "def a():\n    return 1\n\n\ndef a2():\n    return 3\n")
    second = repo.commit("b", author="Ben <ben@example.com>")
    measure()
    files = by_path(diff_coverage(repo.path, base, repo.head()))
    assert (files["a.py"].origin_of(2).commit, files["a.py"].origin_of(2).author) == (first, "Ann")
    assert files["a.py"].origin_of(6).author == "Ben"
    assert files["b.py"].origin_of(2).commit == second


def test_many_files_measured_in_worker_processes_match_one_process(make_repo, run_coverage,
                                                                  monkeypatch):
    from greenlight.coverage import measured

    repo, base, measure = project(make_repo, run_coverage)
    for i in range(4):
        repo.write(f"m{i}.py", f"def f(x):\n    if x:\n        return {i}\n    return 0\n")
    repo.write("run_tests.py", "import m0, m1\nm0.f(1)\nm1.f(0)\n")
    repo.commit("four modules")
    measure()
    serial = diff_coverage(repo.path, base, repo.head()).to_dict()
    monkeypatch.setattr(measured, "PARALLEL_FROM", 2)
    parallel = diff_coverage(repo.path, base, repo.head()).to_dict()
    assert parallel == serial and serial["totals"]["partial_branches"] == 2


def test_old_combined_data_beside_newer_pieces_is_refused(make_repo, run_coverage):
    repo, base, measure = project(make_repo, run_coverage)
    repo.write("lib.py", BASE_LIB + "y = 1\n")
    repo.commit("more")
    measure()                                           # an old combined .coverage
    old = repo.path / ".coverage"
    os.utime(old, ns=(old.stat().st_mtime_ns - 10**9,) * 2)
    measure("--parallel-mode", "run_tests.py")          # a newer run, not combined
    with pytest.raises(UsageError, match=r"older than 1 uncombined parallel data file.*"
                                         r"combine first .*or --combine"):
        diff_coverage(repo.path, base, repo.head())
    assert diff_coverage(repo.path, base, repo.head(), combine=True).passed


def test_data_copied_with_its_old_time_into_a_fresh_checkout_is_judged_on_content(
        make_repo, run_coverage, tmp_path):
    import shutil

    repo, base, measure = project(make_repo, run_coverage)
    repo.write(".coveragerc", "[run]\nrelative_files = true\n")
    repo.write("lib.py", BASE_LIB + "y = 1\n")
    repo.commit("more")
    measure()
    assert diff_coverage(repo.path, base, repo.head()).passed   # the first gate, where measured
    fresh = tmp_path / "fresh"
    repo.git("clone", "-q", str(repo.path), str(fresh))
    os.utime(fresh / "lib.py")                                   # checked out after the run
    for name in (".coverage", ".coverage-greenlight-sources.json"):
        shutil.copy2(repo.path / name, fresh / name)             # cp -p: old times kept
    report = diff_coverage(fresh, base, repo.head())
    assert report.passed and report.units == (1, 1)
    # content still decides: the same data against a file edited and committed after the run
    (fresh / "lib.py").write_text(BASE_LIB + "y = 2\n")
    repo.git("-C", str(fresh), "commit", "-qam", "edited after the run")
    with pytest.raises(UsageError, match="measured on other content of 'lib.py'"):
        diff_coverage(fresh, base, repo.git("-C", str(fresh), "rev-parse", "HEAD"))
