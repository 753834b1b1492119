"""Trace parsing, frame→repo path mapping, and link templates (text in, values out)."""
from __future__ import annotations

import pytest

from greenlight.errors import SettingsError
from greenlight.incidents.links import LinkTemplates
from greenlight.incidents.traces import PathMatcher, map_frames, parse_frames

CHAINED = '''Traceback (most recent call last):
  File "/srv/shop/releases/9f1c/app/server.py", line 88, in do_GET
    body = logic.login(user)
  File "/usr/lib/python3.11/json/decoder.py", line 337, in decode
    obj, end = self.raw_decode(s, idx=_w(s, 0).end())
  File "/srv/shop/releases/9f1c/app/logic.py", line 14, in login
    raise KeyError(user)
KeyError: 'ann'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/srv/shop/releases/9f1c/app/server.py", line 91, in do_GET
    raise RuntimeError("login failed") from None
RuntimeError: login failed
'''


def test_python_tracebacks_keep_order_and_functions():
    frames = parse_frames(CHAINED)
    assert [(f.path.rsplit("/", 1)[-1], f.line, f.function) for f in frames] == [
        ("server.py", 88, "do_GET"), ("decoder.py", 337, "decode"), ("logic.py", 14, "login"),
        ("server.py", 91, "do_GET")]


def test_file_line_forms_without_urls():
    text = "FAILED tests/test_login.py:31 - assert 401 == 200\n" \
           "see http://prometheus:9090/graph and app/logic.py:7:12 (col)\n"
    frames = parse_frames(text)
    assert [(f.path, f.line) for f in frames] == [("tests/test_login.py", 31), ("app/logic.py", 7)]


def test_mapping_by_longest_suffix_refuses_ties_and_foreign_files():
    repo = ["app/server.py", "app/logic.py", "lib/logic.py", "app/decoder.py", "logic.py"]
    mapped, unmapped = map_frames(parse_frames(CHAINED), repo)
    assert [f.repo_path for f in mapped] == ["app/server.py", "app/logic.py", "app/server.py"]
    assert mapped[-1].innermost and not mapped[0].innermost
    assert [f.path for f in unmapped] == ["/usr/lib/python3.11/json/decoder.py"]
    matcher = PathMatcher(["app/logic.py", "lib/logic.py"])
    assert matcher.match("logic.py") is None            # two candidates, same evidence: no guess
    assert matcher.match("/x/lib/logic.py") == "lib/logic.py"


@pytest.mark.parametrize("preset, commit, compare, blame", [
    ("github", "https://h/o/r/commit/abc", "https://h/o/r/compare/b0...abc",
     "https://h/o/r/blame/abc/app/my%20file.py#L7"),
    ("gitlab", "https://h/o/r/-/commit/abc", "https://h/o/r/-/compare/b0...abc",
     "https://h/o/r/-/blame/abc/app/my%20file.py#L7"),
    ("gitea", "https://h/o/r/commit/abc", "https://h/o/r/compare/b0...abc",
     "https://h/o/r/blame/commit/abc/app/my%20file.py#L7"),
    ("cgit", "https://h/o/r/commit/?id=abc", "https://h/o/r/diff/?id=abc&id2=b0",
     "https://h/o/r/blame/app/my%20file.py?id=abc#n7"),
])
def test_link_presets(preset, commit, compare, blame):
    links = LinkTemplates.from_settings({"preset": preset, "url": "https://h/o/r/"})
    assert links.commit_url("abc") == commit
    assert links.compare_url("b0", "abc") == compare
    assert links.blame_url("abc", "app/my file.py", 7) == blame


def test_link_templates_override_and_errors():
    links = LinkTemplates.from_settings({"preset": "github", "url": "https://h/r",
                                         "commit": "https://cgit.example/c/{short}"})
    assert links.commit_url("0123456789abcdef0123") == "https://cgit.example/c/0123456789ab"
    assert LinkTemplates.from_settings({}).commit_url("abc") is None
    with pytest.raises(SettingsError, match="preset = 'bitbucket' is unknown"):
        LinkTemplates.from_settings({"preset": "bitbucket", "url": "https://h"})
    with pytest.raises(SettingsError, match="bad placeholder"):
        LinkTemplates.from_settings({"commit": "https://h/{commit_id}"})
