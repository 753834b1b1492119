"""The ssh transport against a real sshd on 127.0.0.1 (own host keys, own authorized key,
a free port): rsync of releases, the host agent over ssh, restart and rollback."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from greenlight.deploy.transport_ssh import SshTransport
from greenlight.deploy.transport_errors import HostError

from .conftest import ScriptedJudge, free_ports

SSHD = "/usr/sbin/sshd"


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


@pytest.fixture
def sshd(tmp_path):
    if not (os.path.exists(SSHD) and shutil.which("rsync") and os.geteuid() == 0):
        pytest.skip("needs root, openssh-server and rsync (scripts/system-deps.sh)")
    d = tmp_path / "sshd"
    d.mkdir()
    _keygen(d / "host_key")
    _keygen(d / "client_key")
    shutil.copy(d / "client_key.pub", d / "authorized_keys")
    port = free_ports(1)[0]
    (d / "sshd_config").write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {d / 'host_key'}",
        f"PidFile {d / 'sshd.pid'}", f"AuthorizedKeysFile {d / 'authorized_keys'}",
        "PermitRootLogin prohibit-password", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no",
        "PubkeyAuthentication yes", "LogLevel ERROR", ""]))
    os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation directory
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")],
                            stderr=open(d / "sshd.log", "wb"))
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail(f"sshd did not start: {(d / 'sshd.log').read_text()}")
    host_pub = (d / "host_key.pub").read_text().split()
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    yield {"port": port, "identity": str(d / "client_key"),
           "known_hosts": str(d / "known_hosts"), "dir": d}
    proc.terminate()
    proc.wait(10)


def ssh_host(local, sshd):
    return replace(local, transport="ssh", address="127.0.0.1", user="root",
                   ssh_port=sshd["port"], identity_file=sshd["identity"],
                   known_hosts_file=sshd["known_hosts"], strict_host_key_checking="yes",
                   remote_python=sys.executable)  # the "remote" host is this machine


def test_deploy_and_rollback_over_ssh(world_factory, sshd):
    world = world_factory(2)
    world.settings.hosts = [world.hosts[0], ssh_host(world.hosts[1], sshd)]
    v1 = world.commit_app("v1")
    result = world.deployer().deploy(v1)
    assert result.outcome == "success", result.message
    world.assert_consistent(v1, "v1")

    v2 = world.commit_app("v2")
    result = world.deployer(ScriptedJudge("fail")).deploy(v2)
    assert result.outcome == "rolled_back"
    world.assert_consistent(v1, "v1")
    # the release reached the ssh host by rsync, finished, and is not current
    state = SshTransport(world.settings.hosts[1]).agent("state")
    assert {r["sha"]: r["finished"] for r in state["releases"]} == {v1: True, v2: True}
    assert state["current"] == v1

    v3 = world.commit_app("v3")
    assert world.deployer(ScriptedJudge("pass")).deploy(v3).outcome == "success"
    world.assert_consistent(v3, "v3")


def test_unknown_host_key_is_refused(world_factory, sshd):
    world = world_factory(1)
    other = sshd["dir"] / "other_known_hosts"
    other.write_text(f"[127.0.0.1]:{sshd['port']} ssh-ed25519 "
                     "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n")
    host = replace(ssh_host(world.hosts[0], sshd), known_hosts_file=str(other))
    with pytest.raises(HostError, match="ssh to 127.0.0.1"):
        SshTransport(host).agent("state")


def test_remote_arguments_are_quoted_not_interpreted(world_factory, sshd, tmp_path):
    world = world_factory(1)
    host = ssh_host(world.hosts[0], sshd)
    host = replace(host, path=str(tmp_path / "odd dir; touch pwned"))
    transport = SshTransport(host)
    transport.agent("mkdir")
    out = transport.run(["echo", "$(id)", "; rm -rf /"])
    assert out["returncode"] == 0 and out["output"].strip() == "$(id) ; rm -rf /"
    assert (tmp_path / "odd dir; touch pwned" / "releases").is_dir()
    assert not Path("pwned").exists() and not (tmp_path / "pwned").exists()
