"""Greenlight's side of Buildbot's web server: change hook, authentication, dashboard pages."""
