"""Start recording from the environment (``LOCKSCOPE_OUT`` and the other variables).

Called by the start-up hook (``lockscope_startup``, armed by ``lockscope_startup.pth``
in site-packages) once the program imports ``threading``.  Options come from the
environment: ``LOCKSCOPE_STACKS`` (frames), ``LOCKSCOPE_MAX_FILE_MB``,
``LOCKSCOPE_MAX_BUFFER_EVENTS``, ``LOCKSCOPE_FLUSH_INTERVAL`` (seconds),
``LOCKSCOPE_MAX_TOTAL_MB``, ``LOCKSCOPE_MIN_FREE_MB``, ``LOCKSCOPE_REDACT`` (``0`` keeps
argv as is).  Never raises.
"""

from __future__ import annotations

import os
import sys


def _env_options() -> dict:
    opts: dict = {}
    for key, name, conv in (("stacks", "LOCKSCOPE_STACKS", int),
                            ("max_file_mb", "LOCKSCOPE_MAX_FILE_MB", float),
                            ("max_buffer_events", "LOCKSCOPE_MAX_BUFFER_EVENTS", int),
                            ("flush_interval", "LOCKSCOPE_FLUSH_INTERVAL", float),
                            ("max_total_mb", "LOCKSCOPE_MAX_TOTAL_MB", float),
                            ("min_free_mb", "LOCKSCOPE_MIN_FREE_MB", float)):
        raw = os.environ.get(name)
        if raw:
            try:
                opts[key] = conv(raw)
            except ValueError:
                sys.stderr.write(f"lockscope: ignoring {name}={raw!r} (not a number)\n")
    redact = os.environ.get("LOCKSCOPE_REDACT", "").strip().lower()
    if redact in ("0", "no", "false", "off"):
        opts["redact_argv"] = False
    return opts


def start_from_env() -> None:
    """Start recording into ``LOCKSCOPE_OUT`` with the options of the environment."""
    out = os.environ.get("LOCKSCOPE_OUT")
    if not out:
        return
    try:
        import recorder

        recorder.start(out, **_env_options())
    except Exception as exc:  # never stop the program from starting
        sys.stderr.write(f"lockscope: recorder not started ({exc!r})\n")
