"""What runs on a host: the release directory operations, one implementation for every transport.

The local transport calls :func:`dispatch` in-process; the ssh transport ships this file (with
switch.py) to ``python3 -`` over ssh and passes the operation as arguments, so a remote host
needs nothing installed but Python 3. Standard library only.

Host layout::

    <path>/releases/<sha>/            a release (an exported commit plus its build output)
    <path>/releases/<sha>/.greenlight-unfinished   present while the release is being built
    <path>/current  -> releases/<sha>  (switched atomically)
    <path>/previous -> releases/<sha>  (the release current pointed at before the last switch)
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time

try:  # in-process; when shipped over ssh, switch.py's source is prepended instead
    from greenlight.deploy.switch import atomic_switch, read_link
except ImportError:  # pragma: no cover - only on a remote host
    pass

UNFINISHED_MARKER = ".greenlight-unfinished"
TRASH_PREFIX = ".trash-"
SHA_RE = re.compile(r"^[0-9a-f]{7,64}$")


class AgentError(Exception):
    """An operation on a host failed; the message says which and why."""


def _check_sha(sha: str) -> str:
    if not SHA_RE.match(sha or ""):
        raise AgentError(f"not a commit sha: {sha!r}")
    return sha


def _releases(path: str) -> str:
    return os.path.join(path, "releases")


def _release_of(link_target: str | None) -> str | None:
    if not link_target:
        return None
    name = os.path.basename(link_target.rstrip("/"))
    return name if SHA_RE.match(name) else None


def state(path: str) -> dict:
    """Current and previous release and every release with its finished flag and age."""
    releases = []
    rel_dir = _releases(path)
    if os.path.isdir(rel_dir):
        for name in sorted(os.listdir(rel_dir)):
            full = os.path.join(rel_dir, name)
            if not SHA_RE.match(name) or not os.path.isdir(full):
                continue
            releases.append({"sha": name,
                             "finished": not os.path.exists(os.path.join(full, UNFINISHED_MARKER)),
                             "mtime": os.stat(full).st_mtime})
    return {"current": _release_of(read_link(path, "current")),
            "previous": _release_of(read_link(path, "previous")),
            "releases": releases}


def begin(path: str, sha: str) -> dict:
    """Create ``releases/<sha>`` with the unfinished marker; reports an already finished one."""
    _check_sha(sha)
    target = os.path.join(_releases(path), sha)
    os.makedirs(_releases(path), exist_ok=True)
    if os.path.isdir(target):
        if not os.path.exists(os.path.join(target, UNFINISHED_MARKER)):
            return {"exists": True}
        _remove_tree(path, sha)
    os.mkdir(target)
    with open(os.path.join(target, UNFINISHED_MARKER), "w") as marker:
        marker.write(f"{time.time()}\n")
    return {"exists": False}


def finish(path: str, sha: str) -> dict:
    """Drop the unfinished marker (after the build): the release may now be switched to."""
    target = os.path.join(_releases(path), _check_sha(sha))
    marker = os.path.join(target, UNFINISHED_MARKER)
    if not os.path.isdir(target):
        raise AgentError(f"release {sha} does not exist under {_releases(path)}")
    if os.path.exists(marker):
        os.unlink(marker)
    os.utime(target)
    return {"finished": True}


def switch(path: str, sha: str, start_log: str | None = None) -> dict:
    """Make ``current`` point at a finished release (``previous`` at the old one first).
    With ``start_log`` also how long that log is now, so a failed start can be shown from
    there on (see :func:`tail`)."""
    target = os.path.join(_releases(path), _check_sha(sha))
    if not os.path.isdir(target):
        raise AgentError(f"release {sha} is not on this host ({_releases(path)})")
    if os.path.exists(os.path.join(target, UNFINISHED_MARKER)):
        raise AgentError(f"release {sha} is unfinished on this host; refusing to switch")
    old = _release_of(read_link(path, "current"))
    if old and old != sha:
        atomic_switch(path, "previous", os.path.join("releases", old))
        if os.environ.get("GREENLIGHT_CRASH_AT") == "between-links":  # fault injection (tests)
            os.kill(os.getpid(), 9)
    atomic_switch(path, "current", os.path.join("releases", sha))
    out = {"current": sha, "was": old}
    if start_log:
        try:
            out["log_size"] = os.path.getsize(_inside(path, start_log))
        except FileNotFoundError:
            out["log_size"] = 0
    return out


TAIL_BYTES = 6000


def _inside(path: str, relative: str) -> str:
    """``path/relative`` when it stays inside the host directory, else AgentError."""
    if os.path.isabs(relative) or ".." in relative.replace("\\", "/").split("/"):
        raise AgentError(f"not a path inside the host directory: {relative!r}")
    return os.path.join(path, relative)


def tail(path: str, start_log: str, offset: str = "0") -> dict:
    """The end of a log inside the host directory, from byte ``offset`` on (at most
    TAIL_BYTES): what a server that did not start printed."""
    name = _inside(path, start_log)
    try:
        size = os.path.getsize(name)
    except FileNotFoundError:
        return {"text": "", "size": 0, "missing": True}
    start = max(int(offset) if int(offset) <= size else 0, size - TAIL_BYTES)
    with open(name, "rb") as log:
        log.seek(start)
        text = log.read(size - start).decode("utf-8", "replace")
    if start > int(offset) and "\n" in text:
        text = text.split("\n", 1)[1]  # no half first line
    return {"text": text, "size": size}


def remove(path: str, shas: list[str]) -> dict:
    """Delete releases, never the current or previous one."""
    st = state(path)
    protected = {st["current"], st["previous"]}
    removed = []
    for sha in shas:
        _check_sha(sha)
        if sha in protected:
            raise AgentError(f"refusing to remove release {sha}: it is current or previous")
        if os.path.isdir(os.path.join(_releases(path), sha)):
            _remove_tree(path, sha)
            removed.append(sha)
    return {"removed": removed}


def cleanup(path: str) -> dict:
    """Remove what a crash leaves behind: unfinished releases, trash, stray temp links."""
    removed = []
    rel_dir = _releases(path)
    if os.path.isdir(rel_dir):
        protected = {_release_of(read_link(path, "current")),
                     _release_of(read_link(path, "previous"))}
        for name in os.listdir(rel_dir):
            full = os.path.join(rel_dir, name)
            if name.startswith(TRASH_PREFIX):
                shutil.rmtree(full, ignore_errors=True)
            elif (SHA_RE.match(name) and name not in protected
                  and os.path.exists(os.path.join(full, UNFINISHED_MARKER))):
                _remove_tree(path, name)
                removed.append(name)
    if os.path.isdir(path):
        for name in os.listdir(path):
            if name.startswith((".current.new.", ".previous.new.")):
                os.unlink(os.path.join(path, name))
    return {"removed": removed}


def run(path: str, argv: list[str], cwd: str | None = None, timeout: float | None = None
        ) -> dict:
    """Run a command (an argument list, no shell) with ``cwd`` relative to the host path."""
    workdir = os.path.join(path, cwd) if cwd else path
    try:
        proc = subprocess.run(argv, cwd=workdir, stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=timeout)
    except FileNotFoundError as exc:
        return {"returncode": 127, "output": f"command not found: {exc}"}
    except subprocess.TimeoutExpired:
        return {"returncode": 124, "output": f"timed out after {timeout}s: {argv[:1]}"}
    output = (proc.stdout + proc.stderr).decode("utf-8", "replace")
    return {"returncode": proc.returncode, "output": output[-4000:]}


def _remove_tree(path: str, sha: str) -> None:
    """Rename first, then delete: a crash mid-delete leaves trash, never a half release."""
    source = os.path.join(_releases(path), sha)
    trash = os.path.join(_releases(path), f"{TRASH_PREFIX}{sha}.{os.getpid()}.{time.time_ns()}")
    os.rename(source, trash)
    shutil.rmtree(trash, ignore_errors=True)


def dispatch(path: str, op: str, args: list[str]) -> dict:
    """Run one operation by name; the single entry point of both transports."""
    if op == "state":
        return state(path)
    if op == "begin":
        return begin(path, args[0])
    if op == "finish":
        return finish(path, args[0])
    if op == "switch":
        return switch(path, args[0], args[1] if len(args) > 1 else None)
    if op == "tail":
        return tail(path, args[0], args[1] if len(args) > 1 else "0")
    if op == "remove":
        return remove(path, list(args))
    if op == "cleanup":
        return cleanup(path)
    if op == "tidy":  # mkdir + cleanup + state in one round trip (one ssh connection)
        os.makedirs(_releases(path), exist_ok=True)
        removed = cleanup(path)["removed"]
        return {**state(path), "cleaned": removed}
    if op == "mkdir":
        os.makedirs(_releases(path), exist_ok=True)
        return {"path": path}
    if op == "run":
        spec = json.loads(args[0])
        return run(path, spec["argv"], spec.get("cwd"), spec.get("timeout"))
    raise AgentError(f"unknown host operation {op!r}")


def main(argv: list[str]) -> int:
    """``python3 - PATH OP ARGS...``: prints one JSON object; exit 0, or 3 with ``error``."""
    try:
        result = dispatch(argv[0], argv[1], argv[2:])
    except (AgentError, OSError) as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return 3
    print(json.dumps(result))
    return 0


if __name__ == "__main__":  # pragma: no cover - the ssh entry point
    sys.exit(main(sys.argv[1:]))
