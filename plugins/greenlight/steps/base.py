"""Where a verify build's "new code" starts, and recording green builds.

``ResolveBase`` sets the ``greenlight_base`` property to the branch's last green sha when that
sha is an ancestor of the built revision (checked on the worker with git), else keeps the
change's own base (the previous tip, or the fork point of a new branch). ``RecordGreen`` runs
last and remembers the revision when everything before it passed.

``is_green`` is the one definition of a green verify build, shared with the deploy trigger:
SUCCESS, or WARNINGS whose only cause is flaky tests (a test that failed, then passed when rerun
alone, does not stop a release; ``[shards] flaky_fails_build`` makes it a failure instead).
"""
from __future__ import annotations

from pathlib import Path

from buildbot.process import buildstep, results

from greenlight.git import is_null_sha
from greenlight.git.commands import IS_ANCESTOR_EXIT_CODES, is_ancestor_command
from greenlight.green_shas import advance_green, last_green


def pushed_base(base: str | None) -> str | None:
    """The base of the pushed range, or None for a first push (no base, or all zeros)."""
    return None if is_null_sha(base) else base


def is_green(build_results: int, shards_result: str | None) -> bool:
    """Whether a verify build with these results counts as green (recorded, deployed)."""
    if build_results == results.SUCCESS:
        return True
    return build_results == results.WARNINGS and shards_result == "warnings"


class _GreenStep(buildstep.ShellMixin, buildstep.BuildStep):
    """A step that reads or moves the branch's last green sha (``green_file``) and asks the
    worker's checkout about ancestry (the master may not hold the repository)."""

    def __init__(self, green_file: str, **kwargs):
        kwargs.setdefault("logEnviron", False)
        kwargs = self.setupShellMixin(kwargs)
        super().__init__(**kwargs)
        self.green_file = Path(green_file)
        self._summary = ""

    async def _is_ancestor(self, ancestor: str, descendant: str) -> bool:
        """A commit the checkout does not have (history rewritten since) is no ancestor."""
        cmd = await self.makeRemoteShellCommand(
            command=is_ancestor_command(ancestor, descendant),
            decodeRC={code: results.SUCCESS for code in IS_ANCESTOR_EXIT_CODES})
        await self.runCommand(cmd)
        return cmd.rc == 0

    def getResultSummary(self):
        return {"step": self._summary} if self._summary else super().getResultSummary()


class ResolveBase(_GreenStep):
    name = "resolve base"

    async def run(self):
        branch = self.getProperty("branch") or ""
        change_base = self.getProperty("greenlight_base") or ""
        green = last_green(self.green_file, branch)
        base, why = change_base, "the previous tip of the branch"
        if green and green != self.getProperty("got_revision") \
                and await self._is_ancestor(green, "HEAD"):
            base, why = green, "the last green build of the branch"
        if not base:
            why = "nothing: first build, every file counts as new"
        self.setProperty("greenlight_base", base, "ResolveBase")
        self._summary = f"base {base[:10] or '(none)'}: {why}"
        await self.addCompleteLog("base", f"{base}\n{why}\n")
        return results.SUCCESS


class RecordGreen(_GreenStep):
    name = "record green"

    def __init__(self, green_file: str, **kwargs):
        kwargs.setdefault("alwaysRun", True)
        kwargs.setdefault("hideStepIf", lambda result, step: result == results.SKIPPED)
        super().__init__(green_file, **kwargs)

    async def run(self):
        if not is_green(self.build.results, self.getProperty("shards_result")):
            return results.SKIPPED
        revision = self.getProperty("got_revision")
        if isinstance(revision, dict):
            revision = next(iter(revision.values()), None)
        branch = self.getProperty("branch")
        if not (revision and branch):
            return results.SUCCESS
        for _ in range(5):   # another build may move last green while this one asks the worker
            current = last_green(self.green_file, branch)
            known = {}
            if current and current != revision:
                for pair in ((current, revision), (revision, current)):
                    known[pair] = await self._is_ancestor(*pair)
            try:
                moved, current = advance_green(self.green_file, branch, revision,
                                               lambda a, b: known[(a, b)])
            except KeyError:
                continue
            self._summary = f"last green {revision[:10]}" if moved else (
                f"last green stays {current[:10]}: {revision[:10]} is older")
            return results.SUCCESS
        self._summary = "last green kept moving; not recorded"
        return results.WARNINGS
