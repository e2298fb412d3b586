"""Build hook: compile the recorder's optional C accelerator (recorder/_speedups.c).

The recorder works without it (pure Python, slower), so a machine without a C
compiler or Python headers still installs lockscope: the hook warns and goes on.
Set LOCKSCOPE_NO_EXTENSION=1 to skip the compilation on purpose.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = "recorder/_speedups.c"
DEPENDS = ["recorder/_summary_fast.c", "recorder/_jobs_fast.c",
           "recorder/_simplequeue_fast.c", "recorder/_semaphore_fast.c",
           "recorder/_event_fast.c", "recorder/_ev_slabs.c"]  # (#included by SOURCE)


def compile_speedups(root: Path) -> Path:
    """Compile the extension in place (next to its source) and return its path."""
    from setuptools import Distribution, Extension
    from setuptools.command.build_ext import build_ext

    here = os.getcwd()
    os.chdir(root)
    try:
        dist = Distribution({
            "name": "lockscope-speedups",
            "ext_modules": [Extension("recorder._speedups", [SOURCE], depends=DEPENDS,
                                      extra_compile_args=["-O3"]
                                      if os.name != "nt" else [])],
        })
        cmd = build_ext(dist)
        cmd.inplace = True
        cmd.build_temp = str(root / "build" / "speedups-tmp")
        cmd.ensure_finalized()
        cmd.run()
        return Path(cmd.get_ext_fullpath("recorder._speedups")).resolve()
    finally:
        os.chdir(here)


class SpeedupsBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict) -> None:
        if self.target_name != "wheel" or os.environ.get("LOCKSCOPE_NO_EXTENSION"):
            return
        root = Path(self.root)
        try:
            built = compile_speedups(root)
        except BaseException as exc:  # setuptools raises SystemExit on compiler errors
            if isinstance(exc, KeyboardInterrupt):
                raise
            print(f"lockscope: the C accelerator was not built ({exc}); "
                  "the recorder runs in pure Python", file=sys.stderr)
            return
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        if version != "editable":
            build_data["force_include"][str(built)] = built.relative_to(root).as_posix()
