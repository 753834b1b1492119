"""Renderers escape what comes from files and commits, and show the changed lines in context."""
from __future__ import annotations

from greenlight.coverage import diff_coverage
from greenlight.coverage.render import render_html, render_markdown, render_text


def hostile_report(make_repo, run_coverage):
    repo = make_repo()
    repo.write("run_tests.py", "pass\n")
    base = repo.commit("base")
    repo.write("x_<b>.py", "def f():\n    return '<script>alert(1)</script>'\n"
                           "\n\n\n\n\n\n\ny = 1\n")
    repo.commit("evil", author="Mal & Co | x <m@x>")
    run_coverage(repo.path, "run_tests.py")
    return diff_coverage(repo.path, base, repo.head())


def test_html_escapes_source_paths_and_authors(make_repo, run_coverage):
    html = render_html(hostile_report(make_repo, run_coverage))
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "Mal &amp; Co | x" in html
    assert "x_&lt;b&gt;.py" in html
    assert html.count('<tr class="miss">') == 3           # lines 1, 2 and 10
    assert html.count('<tr class="noexec">') == 7         # the changed blank lines 3..9


def test_markdown_escapes_table_breakers(make_repo, run_coverage):
    md = render_markdown(hostile_report(make_repo, run_coverage))
    assert "Mal &amp; Co \\| x" in md
    assert "| x\\_&lt;b&gt;.py | 3 | 0 | 0/0 | 0.00 | 1-2, 10 |" in md


def test_text_lists_each_uncovered_line(make_repo, run_coverage):
    text = render_text(hostile_report(make_repo, run_coverage))
    assert text.splitlines()[0].startswith("coverage of new code 0.00% (0/3 new lines)")
    assert sum("not covered" in line for line in text.splitlines()) == 3


def test_html_shows_context_around_changes_with_gaps(make_repo, run_coverage):
    repo = make_repo()
    body = [f"v{i} = {i}\n" for i in range(1, 21)]
    repo.write("m.py", "".join(body))
    repo.write("run_tests.py", "import m\n")
    base = repo.commit("base")
    body[1], body[17] = "v2 = 'two'\n", "v18 = 'eighteen'\n"
    repo.write("m.py", "".join(body))
    repo.commit("two distant edits")
    run_coverage(repo.path, "run_tests.py")
    html = render_html(diff_coverage(repo.path, base, repo.head()))
    rows = [n for n in range(1, 21) if f'<td class="n">{n}</td>' in html]
    assert rows == [1, 2, 3, 4, 5, 15, 16, 17, 18, 19, 20]
    assert html.count('<tr class="gap">') == 1 and html.count('<tr class="run">') == 2
