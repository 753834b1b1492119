"""Atomic switch of a symlink (``current``): there is never a moment without a link.

A new link is created beside the old one and renamed over it with rename(2), which replaces the
directory entry atomically; the directory is then fsynced so the switch survives a power cut.
Standard library only: this file is also shipped to ssh hosts (see host_agent.py).
"""
from __future__ import annotations

import os


def fsync_directory(directory: str) -> None:
    """Flush a directory's entries (a rename is durable only once its directory is synced)."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_switch(directory: str, link_name: str, target: str) -> str | None:
    """Point ``directory/link_name`` at ``target`` atomically; returns the previous target.

    ``target`` is stored as given (relative targets keep a host directory relocatable).
    """
    link_path = os.path.join(directory, link_name)
    try:
        old = os.readlink(link_path)
    except (FileNotFoundError, OSError):
        old = None
    if old == target:
        return old
    temp = os.path.join(directory, f".{link_name}.new.{os.getpid()}")
    try:
        os.unlink(temp)
    except FileNotFoundError:
        pass
    os.symlink(target, temp)
    try:
        os.rename(temp, link_path)  # rename(2): the old link is replaced in one step
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise
    fsync_directory(directory)
    return old


def read_link(directory: str, link_name: str) -> str | None:
    """The link's target, or None when there is no link yet."""
    try:
        return os.readlink(os.path.join(directory, link_name))
    except (FileNotFoundError, OSError):
        return None
