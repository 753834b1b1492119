"""Coverage on new code: the lines a push adds or changes must be run by the tests.

Public surface: ``diff_coverage`` (engine → Report), ``prepare`` (the half that needs no test
data), the renderers, ``pre_push_check`` for the client hook and ``combine_data`` for coverage
from parallel workers and shards. Imported lazily, so that a gate run with a prepared analysis
does not pay for modules it does not use (gitpython above all).
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "RENDERERS": "render", "Report": "report", "combine_data": "combine",
    "diff_coverage": "gate", "prepare": "gate", "pre_push_check": "pre_push",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"greenlight.coverage.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
