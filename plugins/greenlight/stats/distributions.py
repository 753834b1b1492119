"""scipy's distributions and tests, each loaded on its first use.

Importing ``scipy.stats`` costs 1-2 s of CPU. Every process that reads the settings checks the
judge's (``greenlight.deploy.judge`` imports this package), so the master at each start,
``greenlight up`` and every CLI verb paid that for a test they never ran. The statistics
modules import their scipy names from here; the first call or attribute read imports scipy.
"""
from __future__ import annotations

import importlib
from typing import Any


class Deferred:
    """``getattr(import_module(module), name)`` (the module itself when ``name`` is None),
    imported the first time it is called or one of its attributes is read."""

    def __init__(self, module: str, name: str | None = None):
        self._module, self._name = module, name
        self._target: Any = None

    def _load(self) -> Any:
        if self._target is None:
            module = importlib.import_module(self._module)  # under the import lock: thread-safe
            self._target = module if self._name is None else getattr(module, self._name)
        return self._target

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._load(), attr)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._load()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<deferred {self._module}{'.' + self._name if self._name else ''}>"


beta = Deferred("scipy.stats", "beta")
binomtest = Deferred("scipy.stats", "binomtest")
chi2 = Deferred("scipy.stats", "chi2")
chi2_contingency = Deferred("scipy.stats", "chi2_contingency")
chisquare = Deferred("scipy.stats", "chisquare")
gamma = Deferred("scipy.stats", "gamma")
norm = Deferred("scipy.stats", "norm")
student_t = Deferred("scipy.stats", "t")
optimize = Deferred("scipy.optimize")
