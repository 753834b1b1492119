"""Helpers that run on a Buildbot worker for the target repository (no Buildbot import)."""
