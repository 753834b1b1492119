"""Assembles the Buildbot configuration (``BuildmasterConfig``) from one settings file."""
