"""Greenlight: continuous deployment on Buildbot.

Each capability is a plain engine (no Buildbot import) with a CLI verb and JSON output;
``greenlight.steps`` and ``greenlight.www`` adapt the engines to Buildbot.
"""
__all__ = ["__version__"]
__version__ = "0.1.0"
