"""Call sites are per code location: identical functions in two files (code
objects that compare equal) must not share sites.  Found by the plugin's tests,
where pytester re-creates the same test file in another directory."""
from __future__ import annotations

import json
import threading

import recorder

BODY = "def take(lock):\n    with lock:\n        pass\n"


def test_identical_functions_in_two_files_get_their_own_sites(tmp_path):
    first = {}
    second = {}
    exec(compile(BODY, str(tmp_path / "one.py"), "exec"), first)
    exec(compile(BODY, str(tmp_path / "two.py"), "exec"), second)
    assert first["take"].__code__ == second["take"].__code__  # the premise
    recorder.start(tmp_path / "traces")
    try:
        lock = threading.Lock()
        first["take"](lock)
        second["take"](lock)
    finally:
        files = recorder.stop()
    records = [json.loads(line) for f in files for line in open(f)]
    sites = {r["id"]: r for r in records if r["k"] == "site"}
    acquired = [sites[r["site"]] for r in records if r.get("op") == "acquire"]
    assert [(s["file"], s["line"]) for s in acquired] == [
        (str(tmp_path / "one.py"), 2), (str(tmp_path / "two.py"), 2)]
