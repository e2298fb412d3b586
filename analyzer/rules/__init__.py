"""Rule registry: every module in this package that defines `find(ctx)` is a rule.

A rule module declares `KINDS` (the finding kinds it may produce) and
`find(ctx: Context) -> list[Finding]`, and may declare `PREPARE(ctx)`: work
that needs only holds and waits (cached in the context), which `analyze` runs
while the lock dependencies are being built. Adding a rule is adding a module.
"""
from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def all_rules() -> list[ModuleType]:
    """The rule modules, in name order."""
    mods = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        if callable(getattr(mod, "find", None)):
            mods.append(mod)
    return mods
