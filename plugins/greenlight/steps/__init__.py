"""Buildbot steps: thin adapters that run Greenlight's engines on a worker."""
