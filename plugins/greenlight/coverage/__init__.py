"""Coverage on new code: the lines a push adds or changes must be run by the tests.

Public surface: ``diff_coverage`` (engine → Report), the renderers, ``pre_push_check`` for the
client hook and ``combine_data`` for coverage from parallel workers and shards.
"""
from greenlight.coverage.combine import combine_data
from greenlight.coverage.gate import diff_coverage
from greenlight.coverage.pre_push import pre_push_check
from greenlight.coverage.render import RENDERERS
from greenlight.coverage.report import Report

__all__ = ["RENDERERS", "Report", "combine_data", "diff_coverage", "pre_push_check"]
