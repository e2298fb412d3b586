"""The sink is safe to leave on: bounded disk use, private files, any text, beats."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest
from lockscope_tracecheck import Trace, read_part

import recorder
from recorder import _autostart, _disk
from recorder._redact import redact_argv
from recorder._sink import Sink

MB = 1024 * 1024


def lines(path) -> list[dict]:
    return [orjson.loads(line) for line in Path(path).read_bytes().splitlines()]


def spin(lock, n: int) -> None:
    for _ in range(n):
        with lock:
            pass


def lock_events(records: list[dict], lock_id: int) -> list[str]:
    return [r["op"] for r in records if r["k"] == "ev" and r["obj"] == lock_id]


def named_lock(records: list[dict], name: str) -> int:
    ids = {r["id"] for r in records if r["k"] == "lock" and r.get("name") == name}
    ids |= {r["id"] for r in records if r["k"] == "name" and r["name"] == name}
    assert len(ids) == 1, ids
    return ids.pop()


# ------------------------------------------------------------------ disk: total cap

def test_total_size_cap_keeps_the_newest_parts(rec):
    cap_mb = 0.5
    rec.start(max_total_mb=cap_mb, min_free_mb=0, flush_interval=3600)
    lock = recorder.name(threading.Lock(), "busy")
    for _ in range(60):
        spin(lock, 500)
        recorder.flush()
    on_disk_before_stop = sorted(str(p) for p in rec.out_dir.iterdir())
    assert on_disk_before_stop == sorted(recorder.trace_files())
    files = recorder.stop()
    on_disk = sorted(rec.out_dir.iterdir())
    assert sorted(map(str, on_disk)) == sorted(files)
    total = sum(p.stat().st_size for p in on_disk)
    # The cap holds (a part may overshoot its quarter by a few lines).
    assert total <= cap_mb * MB + 4096, total
    parts = [read_part(p) for p in files]
    numbers = sorted(part[0]["part"] for part in parts)
    # The oldest parts were deleted; the newest ones, up to the last, are kept.
    assert numbers[0] > 0 and numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    assert 2 <= len(numbers) <= 4
    last = max(parts, key=lambda part: part[0]["part"])
    assert last[-1]["k"] == "end" and last[-1]["reason"] == "stop"
    # 60,000 events were recorded: the kept parts hold the newest of them.
    kept = sum(len(lock_events(part, named_lock(part, "busy"))) for part in parts)
    assert 0 < kept < 60_000
    # The analyzer says that history is missing.
    from analyzer.analysis import analyze

    warnings = analyze(files, fail_on="never")["trace"]["warnings"]
    assert f"1 run(s) lack parts ({numbers[0]} in all;" in " ".join(warnings)


def test_cap_forces_rotation_when_parts_are_unlimited(rec):
    rec.start(max_total_mb=0.5, max_file_mb=0, min_free_mb=0, flush_interval=3600)
    lock = threading.Lock()
    for _ in range(60):
        spin(lock, 500)
        recorder.flush()
    files = recorder.stop()
    assert sum(os.path.getsize(f) for f in files) <= 0.5 * MB + 4096
    assert all(read_part(f)[0]["part"] > 0 for f in files)


# ------------------------------------------------------------ disk: free-space floor

class FakeDisk:
    """free_bytes() of the sink's disk, set by the test."""

    def __init__(self, free: int) -> None:
        self.free = free

    def __call__(self, path: str) -> int:
        return self.free


def test_free_space_floor_pauses_and_resumes_with_one_message(rec, capfd, monkeypatch):
    disk = FakeDisk(100 * MB)
    monkeypatch.setattr(_disk, "free_bytes", disk)
    rec.start(min_free_mb=50, flush_interval=3600)
    lock = recorder.name(threading.Lock(), "work")
    spin(lock, 10)
    recorder.flush()
    for _cycle in range(2):  # paused twice: still one message
        disk.free = 49 * MB
        recorder.flush()
        assert recorder._sink.paused == "space" and recorder.is_recording()
        spin(lock, 500)  # lost: counted, not written
        recorder.flush()
        disk.free = 100 * MB
        recorder.flush()  # resumes
        assert recorder._sink.paused is None
        spin(lock, 10)
        recorder.flush()
    trace = rec.stop()
    err = capfd.readouterr().err
    assert err.count("lockscope:") == 1, err
    assert "recording paused" in err and "min_free_mb" in err
    lid = named_lock(trace.records, "work")
    assert lock_events(trace.records, lid) == ["acquire", "release"] * 30
    main = trace.thread("MainThread")["id"]
    drops = [r for r in trace.records if r["k"] == "dropped"]
    assert [(r["th"], r["count"]) for r in drops] == [(main, 1000), (main, 1000)]
    resyncs = [(r["th"], r["lost"], r["locks"]) for r in trace.records if r["k"] == "resync"]
    lost = [{"obj": lid, "task": None, "acquired": 500, "released": 500}]
    assert resyncs == [(main, 1000, lost), (main, 1000, lost)]
    assert trace.records[-1]["k"] == "end"


def test_resync_after_a_pause_says_which_locks_are_held(rec, monkeypatch):
    disk = FakeDisk(100 * MB)
    monkeypatch.setattr(_disk, "free_bytes", disk)
    rec.start(min_free_mb=50, flush_interval=3600)
    held = recorder.name(threading.RLock(), "held")
    taken = recorder.name(threading.Lock(), "taken")
    held.acquire()
    held.acquire()
    recorder.flush()
    disk.free = 1 * MB
    recorder.flush()
    held.release()                   # an inner level: neither recorded nor lost
    taken.acquire()                  # lost: held after the gap
    spin(threading.Lock(), 3)        # lost: three acquires and releases
    recorder.flush()
    disk.free = 100 * MB
    recorder.flush()
    taken.release()
    held.release()
    trace = rec.stop()
    main = trace.thread("MainThread")["id"]
    ids = {name: named_lock(trace.records, name) for name in ("held", "taken")}
    resync = [r for r in trace.records if r["k"] == "resync"]
    assert len(resync) == 1 and resync[0]["th"] == main and resync[0]["lost"] == 7
    counts = {lk["obj"]: (lk["acquired"], lk["released"]) for lk in resync[0]["locks"]}
    assert ids["held"] not in counts and counts[ids["taken"]] == (1, 0)
    assert sorted(counts.values()) == [(1, 0), (3, 3)]
    # Recorded before the gap: the acquire of "held" (its inner level is not
    # recorded, nor lost: the gap names no change of it); after it, one release of each.
    assert lock_events(trace.records, ids["held"]) == ["acquire", "release"]
    assert lock_events(trace.records, ids["taken"]) == ["release"]


def test_floor_counts_a_whole_flush_before_writing_it(rec, monkeypatch):
    """A flush that would take free space below the floor is not written at all."""
    disk = FakeDisk(50 * MB + 50_000)
    monkeypatch.setattr(_disk, "free_bytes", disk)
    rec.start(min_free_mb=50, flush_interval=3600)
    lock = threading.Lock()
    spin(lock, 5000)  # 10,000 events: far more than 50 kB on disk
    recorder.flush()
    assert recorder._sink.paused == "space"
    disk.free = 100 * MB
    trace = rec.stop()
    drops = [r for r in trace.records if r["k"] == "dropped"]
    assert sum(r["count"] for r in drops) >= 10_000


def test_default_floor_is_max_of_256_mb_and_5_percent(tmp_path):
    st = os.statvfs(tmp_path)
    want = max(256 * MB, int(st.f_blocks * st.f_frsize * 0.05))
    assert _disk.default_min_free(str(tmp_path)) == want
    sink = Sink(str(tmp_path / "t"), {}, 1.0, 64, min_free_mb=None)
    sink.open()
    try:
        assert sink.min_free == want
    finally:
        os.close(sink.fd)


# ---------------------------------------------------------- disk: write errors

def test_write_error_pauses_and_resumes_in_a_new_part(rec, capfd):
    """A full disk (the trace's descriptor pointed at /dev/full) pauses recording;
    when writing works again the run continues in a self-contained new part."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    rec.start(min_free_mb=0, flush_interval=3600)
    lock = recorder.name(threading.Lock(), "work")
    spin(lock, 10)
    sink = recorder._sink
    sink.flush()
    saved = os.dup(sink.fd)
    full = os.open("/dev/full", os.O_WRONLY)
    os.dup2(full, sink.fd)
    os.close(full)
    spin(lock, 100)
    sink.flush()
    assert sink.paused == "error" and recorder.is_recording()
    spin(lock, 100)
    sink.flush()  # still full
    os.dup2(saved, sink.fd)  # space is back
    os.close(saved)
    spin(lock, 10)
    trace = rec.stop()
    err = capfd.readouterr().err
    assert err.count("lockscope:") == 1, err
    assert "No space left" in err and "recording paused" in err
    assert [p[0]["part"] for p in trace.parts] == [0, 1]
    assert trace.parts[0][-1]["reason"] == "rotate"
    part1 = trace.parts[1]
    lid = named_lock(part1, "work")
    assert lock_events(trace.parts[0], named_lock(trace.parts[0], "work")) == \
        ["acquire", "release"] * 10
    assert lock_events(part1, lid) == ["acquire", "release"] * 10
    main = trace.thread("MainThread")["id"]
    drops = [(r["th"], r["count"]) for r in part1 if r["k"] == "dropped"]
    assert drops == [(main, 400)]
    resync = [(r["th"], r["lost"], r["locks"]) for r in part1 if r["k"] == "resync"]
    assert resync == [(main, 400, [{"obj": lid, "task": None, "acquired": 200, "released": 200}])]


@pytest.fixture
def tmpfs(tmp_path):
    """A 2 MB filesystem of its own (needs the right to mount)."""
    mnt = tmp_path / "fs"
    mnt.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)],
                              capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        pytest.skip("cannot run mount")
    if done.returncode != 0:
        pytest.skip(f"mount not permitted: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=30)


PROGRAM = r"""
import os, sys, threading, recorder
fs, mode = sys.argv[1], sys.argv[2]
floor = 1.0 if mode == "floor" else 0
rec = recorder.start(os.path.join(fs, "traces"), flush_interval=3600, min_free_mb=floor)
assert rec.active
lock = recorder.name(threading.Lock(), "work")
def spin(n):
    for _ in range(n):
        with lock:
            pass
spin(10)
recorder.flush()
# The program fills its disk: leave 600 kB free ("floor"), or nothing ("full").
ballast = os.path.join(fs, "ballast")
fd = os.open(ballast, os.O_WRONLY | os.O_CREAT)
try:
    for _ in range(1400 if mode == "floor" else 4096):
        os.write(fd, b"x" * 1024)
except OSError:  # ENOSPC: the disk is full
    pass
os.close(fd)
spin(300)
recorder.flush()
paused = recorder._sink.paused
if mode == "floor":
    # Its own writes to the same disk keep working: the trace left the space.
    with open(os.path.join(fs, "own.dat"), "wb") as fh:
        fh.write(b"y" * 400 * 1024)
    os.unlink(os.path.join(fs, "own.dat"))
spin(300)
recorder.flush()
os.unlink(ballast)  # space is back
spin(10)
recorder.stop()
print(paused, recorder.is_recording())
"""


@pytest.mark.parametrize("mode", ["floor", "full"])
def test_full_tmpfs_pauses_recording_and_the_program_runs_on(tmpfs, mode):
    done = subprocess.run([sys.executable, "-c", PROGRAM, str(tmpfs), mode],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "LOCKSCOPE_OUT": ""})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["space" if mode == "floor" else "error", "False"]
    assert done.stderr.count("lockscope:") == 1, done.stderr
    assert "recording paused" in done.stderr
    parts = sorted((read_part(f) for f in (tmpfs / "traces").iterdir()),  # complete lines
                   key=lambda part: part[0]["part"])                       # only, all valid
    records = [r for part in parts for r in part]
    ops = [op for part in parts for op in lock_events(part, named_lock(part, "work"))]
    assert ops == ["acquire", "release"] * 20
    drops = [r["count"] for r in records if r["k"] == "dropped"]
    assert sum(drops) == 1200
    resync = [(r["lost"], [(lk["acquired"], lk["released"]) for lk in r["locks"]])
              for r in records if r["k"] == "resync"]
    assert resync == [(1200, [(600, 600)])]
    assert records[-1] == {**records[-1], "k": "end", "reason": "stop"}


# ------------------------------------------------------------------------ privacy

def test_trace_folder_and_files_are_private(tmp_path):
    old = os.umask(0)
    try:
        rec = recorder.start(tmp_path / "private", flush_interval=3600)
        assert rec.active
        files = recorder.stop()
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "private").st_mode) == 0o700
    assert files and all(stat.S_IMODE(os.stat(f).st_mode) == 0o600 for f in files)


def _refused(out_dir, capfd) -> str:
    handle = recorder.start(out_dir, flush_interval=3600)
    try:
        assert handle.active is False and not recorder.is_recording()
        with threading.Lock():
            pass
    finally:
        recorder.stop()
    err = capfd.readouterr().err
    assert err.count("lockscope:") == 1 and "recording disabled" in err, err
    return err


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a folder to another user")
def test_folder_owned_by_another_user_is_refused(tmp_path, capfd):
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o777)
    os.chown(theirs, 65534, 65534)
    err = _refused(theirs, capfd)
    assert "owned by another user" in err
    assert list(theirs.iterdir()) == []


def test_symlinked_folder_is_refused(tmp_path, capfd):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(real)
    err = _refused(link, capfd)
    assert "symbolic link" in err
    assert list(real.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a link to another user")
def test_folder_behind_another_users_symlink_is_refused(tmp_path, capfd):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(real)
    os.lchown(link, 65534, 65534)
    err = _refused(link / "traces", capfd)
    assert "symbolic link owned by another user" in err
    assert list(real.iterdir()) == []


def test_folder_behind_our_own_symlink_is_accepted(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    assert recorder.start(tmp_path / "link" / "traces", flush_interval=3600).active
    files = recorder.stop()
    assert [os.path.dirname(f) for f in files] == [str(tmp_path / "link" / "traces")]
    assert (real / "traces").is_dir()


@pytest.mark.parametrize("argv, want", [
    (["app.py", "--password=hunter2", "--port", "8080"], ["app.py", "--password=***", "--port", "8080"]),
    (["app.py", "--password", "hunter2", "-v"], ["app.py", "--password", "***", "-v"]),
    (["x", "--db-password=s3", "--api_key=k", "--apikey", "k2"],
     ["x", "--db-password=***", "--api_key=***", "--apikey", "***"]),
    (["x", "--token", "t", "--secret=s", "--key", "k", "--passwd=p", "--auth-token=a"],
     ["x", "--token", "***", "--secret=***", "--key", "***", "--passwd=***", "--auth-token=***"]),
    (["x", "PASSWORD=p", "DB_PASSWORD=q", "USER=bob"], ["x", "PASSWORD=***", "DB_PASSWORD=***", "USER=bob"]),
    (["x", "--dsn=postgres://bob:pw@db/app", "https://u:p@h/x", "http://h/a@b"],
     ["x", "--dsn=postgres://bob:***@db/app", "https://u:***@h/x", "http://h/a@b"]),
    (["x", "--monkey=banana", "--keyboard", "us", "--tokens-per-second=3"],
     ["x", "--monkey=banana", "--keyboard", "us", "--tokens-per-second=***"]),
    (["x", "--header", "Authorization: Bearer abc.def"], ["x", "--header", "Authorization: Bearer ***"]),
    (["x", "--no-password", "--verbose", "--token", "-t0k"], ["x", "--no-password", "--verbose", "--token", "***"]),
])
def test_redact_argv(argv, want):
    assert redact_argv(argv) == want


SECRET_ARGV = ["app.py", "--db-password=hunter2", "--token", "t0k3n",
               "--dsn", "postgres://bob:pw99@db/app", "--port", "8080"]


def test_header_argv_is_redacted_unless_asked(rec, monkeypatch):
    monkeypatch.setattr(sys, "argv", list(SECRET_ARGV))
    rec.start()
    header = rec.stop().header
    assert header["argv"] == ["app.py", "--db-password=***", "--token", "***",
                              "--dsn", "postgres://bob:***@db/app", "--port", "8080"]
    assert header["settings"]["redact_argv"] is True
    rec.start(redact_argv=False)
    assert rec.stop().header["argv"] == SECRET_ARGV


def test_environment_options(monkeypatch):
    monkeypatch.setenv("LOCKSCOPE_MAX_TOTAL_MB", "100")
    monkeypatch.setenv("LOCKSCOPE_MIN_FREE_MB", "0")
    monkeypatch.setenv("LOCKSCOPE_REDACT", "0")
    opts = _autostart._env_options()
    assert opts["max_total_mb"] == 100.0 and opts["min_free_mb"] == 0.0
    assert opts["redact_argv"] is False
    monkeypatch.setenv("LOCKSCOPE_REDACT", "1")
    assert "redact_argv" not in _autostart._env_options()


def test_reports_redact_argv_of_old_traces(rec, monkeypatch, tmp_path):
    """A trace recorded without redaction: the reports mask it, unless --show-argv."""
    monkeypatch.setattr(sys, "argv", list(SECRET_ARGV))
    rec.start(redact_argv=False)
    with threading.Lock():
        pass
    rec.stop()
    lockscope = Path(sys.executable).with_name("lockscope")
    out = {}
    for flag in ([], ["--show-argv"]):
        js, html = tmp_path / "r.json", tmp_path / "r.html"
        done = subprocess.run([str(lockscope), "analyze", str(rec.out_dir), "--json", str(js),
                               "--html", str(html), "--plotlyjs", "cdn", *flag],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        argv = orjson.loads(js.read_bytes())["trace"]["processes"][0]["argv"]
        out[bool(flag)] = (argv, html.read_text() + done.stdout)
    argv, text = out[False]
    assert argv == ["app.py", "--db-password=***", "--token", "***",
                    "--dsn", "postgres://bob:***@db/app", "--port", "8080"]
    assert "hunter2" not in text and "t0k3n" not in text and "pw99" not in text
    argv, text = out[True]
    assert argv == SECRET_ARGV and "hunter2" in text


# ------------------------------------------------------------------ non-UTF-8 text

BAD = os.fsdecode(b"caf\xe9-\xff")   # "caf\udce9-\udcff": not valid UTF-8
SHOWN = "caf\\xe9-\\xff"


def _record_quietly(rec, capfd, body) -> Trace:
    rec.start(stacks=4)
    body()
    recorder.flush()
    assert recorder.is_recording()
    trace = rec.stop()
    assert "lockscope" not in capfd.readouterr().err
    return trace


def test_non_utf8_argv(rec, capfd, monkeypatch):
    monkeypatch.setattr(sys, "argv", [f"/srv/{BAD}.py", BAD])
    trace = _record_quietly(rec, capfd, lambda: spin(threading.Lock(), 1))
    assert trace.header["argv"] == [f"/srv/{SHOWN}.py", SHOWN]


def test_non_utf8_cwd(rec, capfd, tmp_path, monkeypatch):
    where = os.path.join(os.fsencode(tmp_path), b"caf\xe9-\xff")
    os.mkdir(where)
    monkeypatch.chdir(where)
    trace = _record_quietly(rec, capfd, lambda: spin(threading.Lock(), 1))
    assert trace.header["cwd"] == os.path.join(str(tmp_path), SHOWN)


def test_non_utf8_thread_name(rec, capfd):
    def rename_myself():
        spin(threading.Lock(), 1)
        recorder.name(threading.current_thread(), "later-" + BAD)   # a name record

    def body():
        for t in (threading.Thread(target=spin, args=(threading.Lock(), 1), name=BAD),
                  threading.Thread(target=rename_myself)):
            t.start()
            t.join(10)
    trace = _record_quietly(rec, capfd, body)
    assert trace.thread(SHOWN)
    assert trace.thread("later-" + SHOWN)


def test_non_utf8_lock_name(rec, capfd):
    def body():
        spin(recorder.name(threading.Lock(), BAD), 1)   # named before its first use
        lock = threading.Lock()
        spin(lock, 1)
        recorder.flush()
        recorder.name(lock, "later-" + BAD)             # a name record
    trace = _record_quietly(rec, capfd, body)
    assert trace.one("lock", SHOWN) and trace.one("lock", "later-" + SHOWN)


def test_non_utf8_file_name_of_a_site(rec, capfd):
    filename = f"/srv/{BAD}.py"
    code = compile("def f(lock):\n    with lock:\n        pass\n", filename, "exec")
    ns: dict = {}
    exec(code, ns)
    trace = _record_quietly(rec, capfd, lambda: ns["f"](threading.Lock()))
    sites = [s for s in trace.sites.values() if s["file"] == f"/srv/{SHOWN}.py"]
    assert sites and sites[0]["stack"][0][0] == f"/srv/{SHOWN}.py"


def test_other_lone_surrogates_become_replacement_characters(rec, capfd):
    trace = _record_quietly(rec, capfd,
                            lambda: spin(recorder.name(threading.Lock(), "a\ud800b"), 1))
    assert trace.one("lock", "a\ufffdb")


# -------------------------------------------------------------------------- beats

def test_beats_say_how_long_an_idle_process_lived(rec):
    rec.start(flush_interval=0.02)
    spin(threading.Lock(), 1)
    path = recorder.trace_files()[0]
    deadline = time.monotonic() + 30
    while sum(r["k"] == "beat" for r in lines(path)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    records = rec.stop().records
    beats = [r["ts"] for r in records if r["k"] == "beat"]
    assert len(beats) >= 2
    # At most one a second, after every event (nothing happened after the first lock).
    assert all(b - a >= 1_000_000_000 for a, b in zip(beats, beats[1:], strict=False))
    last_event = max(r["ts"] for r in records if r["k"] == "ev")
    assert beats[0] > last_event


def test_analyzer_knows_beat_records(rec):
    from analyzer.analysis import analyze

    rec.start(flush_interval=0.02)
    spin(threading.Lock(), 1)
    path = recorder.trace_files()[0]
    deadline = time.monotonic() + 30
    while not any(r["k"] == "beat" for r in lines(path)) and time.monotonic() < deadline:
        time.sleep(0.05)
    rec.stop()
    # As if the process hung after that beat: the rest of the file is cut off.
    data = Path(path).read_bytes().splitlines(keepends=True)
    last_beat = max(i for i, line in enumerate(data) if line.startswith(b'{"k":"beat"'))
    Path(path).write_bytes(b"".join(data[:last_beat + 1]))
    beat = orjson.loads(data[last_beat])["ts"]
    doc = analyze([str(rec.out_dir)], fail_on="never")
    assert doc["trace"]["unknown_records"] == 0
    assert doc["trace"]["processes"][0]["end_ts"] == beat


def test_folders_of_root_are_accepted_only_when_others_cannot_replace_files(
        tmp_path, monkeypatch, capfd):
    """Seen by another user: a sticky folder of root's (like /tmp) is fine, one that
    anyone may write to without the sticky bit is not."""
    if os.stat(tmp_path).st_uid != 0:
        pytest.skip("needs folders owned by root")
    sticky, shared = tmp_path / "sticky", tmp_path / "shared"
    for folder, mode in ((sticky, 0o1777), (shared, 0o777)):
        folder.mkdir()
        os.chmod(folder, mode)
    monkeypatch.setattr(os, "geteuid", lambda: 65534)
    assert recorder.start(sticky, flush_interval=3600).active
    assert len(recorder.stop()) == 1
    assert "lockscope" not in capfd.readouterr().err
    assert "owned by another user" in _refused(shared, capfd)


def test_a_part_that_cannot_be_opened_pauses_and_every_event_is_accounted_for(rec, monkeypatch):
    rec.start(max_file_mb=0.05, min_free_mb=0, flush_interval=3600)
    lock = recorder.name(threading.Lock(), "work")
    real_open_folder = _disk.open_folder

    def no_space(path):
        raise OSError(28, "No space left on device")

    for round_ in range(30):
        if round_ == 10:
            monkeypatch.setattr(_disk, "open_folder", no_space)  # the next rotation fails
        if round_ == 20:
            assert recorder._sink.paused == "error"
            monkeypatch.setattr(_disk, "open_folder", real_open_folder)
        spin(lock, 200)
        recorder.flush()
    trace = rec.stop()  # parts numbered 0, 1, 2... without a hole, each self-contained
    assert len(trace.parts) > 3
    recorded = sum(len(lock_events(part, named_lock(part, "work"))) for part in trace.parts)
    lost = sum(r["lost"] for r in trace.records if r["k"] == "resync")
    assert lost > 0 and recorded + lost == 30 * 200 * 2


def test_a_test_window_keeps_no_beat_from_before_it(rec, tmp_path):
    from analyzer.pytest_plugin.trace import cut_since, mark_now

    rec.start(flush_interval=0.02)
    spin(threading.Lock(), 1)
    path = recorder.trace_files()[0]
    deadline = time.monotonic() + 30
    while not any(r["k"] == "beat" for r in lines(path)) and time.monotonic() < deadline:
        time.sleep(0.05)
    recorder.flush()
    mark, since = mark_now(recorder.trace_files()), time.monotonic_ns()
    spin(threading.Lock(), 1)
    recorder.flush()
    out = tmp_path / "window"
    out.mkdir()
    window = [r for f in cut_since(recorder.trace_files(), mark, str(out)) for r in lines(f)]
    rec.stop()
    assert any(r["k"] == "beat" for r in lines(path))
    assert [r for r in window if r["k"] == "beat" and r["ts"] < since] == []


def test_gaps_of_too_many_threads_are_counted_for_the_process(rec, monkeypatch):
    monkeypatch.setattr(sys.modules["recorder._sink"], "_MAX_GAPS", 1)
    disk = FakeDisk(100 * MB)
    monkeypatch.setattr(_disk, "free_bytes", disk)
    rec.start(min_free_mb=50, flush_interval=3600)
    lock = threading.Lock()
    spin(lock, 1)
    recorder.flush()
    disk.free = 1 * MB
    recorder.flush()
    spin(lock, 5)                                   # the main thread's gap: 10 events
    worker = threading.Thread(target=spin, args=(lock, 7))
    worker.start()
    # (ended before the join, which then does not wait: a join that waits records a
    # wait-begin and a wait-end too, which under load made the main thread's count 14)
    deadline = time.monotonic() + 10
    while worker.is_alive() and time.monotonic() < deadline:
        time.sleep(0.001)
    worker.join(10)
    recorder.flush()
    disk.free = 100 * MB
    trace = rec.stop()
    drops = {r.get("th"): r["count"] for r in trace.records if r["k"] == "dropped"}
    main = trace.thread("MainThread")["id"]
    # The main thread (10 lock events, the worker's start and join) is named; the
    # worker (its 14 lock events and its end), past the limit, is the process's.
    assert drops == {main: 12, None: 15}


_KILLED_WHEN_THE_FILE_APPEARS = '''
import glob, os, sys, threading
import recorder

out = sys.argv[1]
recorder.start(out, flush_interval=3600)
before = set(glob.glob(os.path.join(out, "*.jsonl")))
pid = os.fork()
if pid == 0:
    # The child's trace file is made at its first event: the child is killed (as a
    # pool's worker may be) the moment a new file of its is in the folder.
    real_open, real_link = os.open, os.link

    def killed_once_there(result):
        if set(glob.glob(os.path.join(out, "*.jsonl"))) - before:
            os._exit(3)
        return result

    os.open = lambda *a, **k: killed_once_there(real_open(*a, **k))
    os.link = lambda *a, **k: killed_once_there(real_link(*a, **k))
    with threading.Lock():
        pass
    os._exit(0)
_, status = os.waitpid(pid, 0)
recorder.stop()
print(os.waitstatus_to_exitcode(status))
'''


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_child_killed_as_its_file_appears_leaves_no_empty_file(tmp_path):
    """A forked child writes its header as it makes its file: killed in between,
    it left an empty trace file (seen from pool workers terminated in CPython's
    test_concurrent_futures); now the file appears with its header in it."""
    out = tmp_path / "traces"
    proc = subprocess.run([sys.executable, "-c", _KILLED_WHEN_THE_FILE_APPEARS, str(out)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-1] == "3"  # (the child was killed there)
    files = sorted(out.glob("*.jsonl"))
    assert len(files) == 2, files
    for f in files:
        assert f.stat().st_size > 0, f
        assert lines(f)[0]["k"] == "header"
