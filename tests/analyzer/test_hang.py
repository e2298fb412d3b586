"""A program that really hung and was killed: a consumer waits on `queue.Queue.get()`
while holding a lock that the producer needs before it puts. One critical wait-cycle
says the program hung there; the stalled waits it explains are folded into it."""
from __future__ import annotations

import subprocess
import sys
import textwrap

from analyzer import analyze

from .conftest import kinds

PROGRAM = '''
import os, queue, signal, threading, time
registry = threading.Lock()  # mark: registry
jobs = queue.Queue()

def producer():
    for i in range(3):
        with registry:  # mark: producer-takes
            jobs.put(i)  # mark: producer-puts
        time.sleep(0.02)
    time.sleep(0.3)
    with registry:  # mark: producer-blocks
        jobs.put(99)

def consumer():
    for i in range(3):
        jobs.get()
    time.sleep(0.1)
    if HOLD:
        with registry:  # mark: consumer-holds
            jobs.get()  # mark: consumer-waits
    else:
        jobs.get()
        with registry:
            pass

threads = [threading.Thread(target=producer, name="producer", daemon=True),
           threading.Thread(target=consumer, name="consumer", daemon=True)]
for t in threads:
    t.start()
for t in threads:
    t.join(1.5)
if any(t.is_alive() for t in threads):
    os.kill(os.getpid(), signal.SIGKILL)  # hung: killed like a stuck service
'''


def run_program(tmp_path, hold: bool):
    script = tmp_path / "svc.py"
    script.write_text(f"HOLD = {hold}\n" + textwrap.dedent(PROGRAM))
    out = tmp_path / "traces"
    proc = subprocess.run([sys.executable, "-m", "recorder", "--out", str(out), str(script)],
                          capture_output=True, text=True, timeout=60)
    return proc, analyze([str(out)]), script


def line(script, marker: str) -> int:
    return next(i for i, text in enumerate(script.read_text().splitlines(), 1) if f"mark: {marker}" in text)


def test_a_real_hang_on_a_queue_is_one_critical_finding(tmp_path):
    proc, doc, script = run_program(tmp_path, hold=True)
    assert proc.returncode == -9, proc.stderr  # it really hung and was killed
    [f] = kinds(doc, "wait-cycle")
    assert f["severity"] == "critical"
    assert f["details"]["hung"] is True
    assert f["title"].startswith("Hang: thread 'consumer' waits for ")
    assert f["message"].startswith("The program hung here")
    [lock] = f["locks"]
    assert lock["created_at"].endswith(f"svc.py:{line(script, 'registry')}")
    waiter, signaller = f["steps"]
    assert waiter["actor"]["name"] == "consumer" and signaller["actor"]["name"] == "producer"
    assert waiter["site"].endswith(f"svc.py:{line(script, 'consumer-waits')}")
    assert waiter["holds"][0]["acquired_at"].endswith(f"svc.py:{line(script, 'consumer-holds')}")
    assert signaller["site"].endswith(f"svc.py:{line(script, 'producer-blocks')}")
    assert signaller["signals"]["site"].endswith(f"svc.py:{line(script, 'producer-puts')}")
    # the two waits that never ended are this finding, not two more warnings
    assert not kinds(doc, "stalled")


def test_the_same_hand_off_without_the_lock_held_is_quiet(tmp_path):
    proc, doc, _ = run_program(tmp_path, hold=False)
    assert proc.returncode == 0, proc.stderr
    assert not kinds(doc, "wait-cycle")
    assert not kinds(doc, "stalled")
    assert not [f for f in doc["findings"] if f["severity"] in ("error", "critical")]


def test_a_wait_that_never_ended_is_measured_to_the_last_record_of_the_run(tmp_path):
    """Lock statistics and stalled waits of a process that hung count the wait up to
    the moment the run was last seen alive (a later record, such as the recorder's
    heartbeat), not 0 ns."""
    from .tracebuilder import Trace

    t = Trace()
    worker = t.thread("worker", parent=t.main)
    lock = t.lock("registry")
    t.acquire(t.main, lock, line=10)
    t.acquire(worker, lock, line=20, wait_ns=0)  # a wait, then (below) no acquire
    t.records.pop()  # the acquire never happened: the worker is still waiting
    wait_ts = t.records[-1]["ts"]
    t.records.append({"k": "beat", "ts": wait_ts + 3_000_000_000})  # alive 3 s later
    doc = analyze([str(t.write(tmp_path / "t.jsonl", end=False))])
    [stats] = [lk for lk in doc["locks"] if lk["name"] == "registry"]
    assert stats["wait_total_ns"] == 3_000_000_000
    [stall] = kinds(doc, "stalled")
    assert stall["details"]["duration_ns"] == 3_000_000_000


BARGING = '''
import os, signal, threading, time
registry = threading.Lock()  # mark: registry
asked = threading.Event()

def feeder():
    asked.set()
    with registry:  # mark: feeder-blocks
        pass

t = threading.Thread(target=feeder, name="feeder", daemon=True)
with registry:
    t.start()
    asked.wait(5)
    time.sleep(0.2)  # the feeder waits for the registry now
registry.acquire()  # mark: barges
if HOLD:
    t.join(1.0)  # mark: joins
    if t.is_alive():
        os.kill(os.getpid(), signal.SIGKILL)  # hung: killed like a stuck service
registry.release()
t.join(5)
'''


def run_barging(tmp_path, hold: bool, attempts: int = 8):
    """Run BARGING until the main thread takes the lock back before the feeder, which
    waits for it, wakes up (locks are not fair: most runs; with the lock held across
    the join, the program then hangs and is killed)."""
    script = tmp_path / "svc.py"
    script.write_text(f"HOLD = {hold}\n" + textwrap.dedent(BARGING))
    for n in range(attempts):
        out = tmp_path / f"traces{n}"
        proc = subprocess.run([sys.executable, "-m", "recorder", "--out", str(out), str(script)],
                              capture_output=True, text=True, timeout=60)
        doc = analyze([str(out)])
        ops = [(th["name"], op) for th, op in _lock_ops(out)]
        if ops[:4] == [("MainThread", "acquire"), ("feeder", "wait"), ("MainThread", "release"),
                       ("MainThread", "acquire")]:
            return proc, doc, script
    raise AssertionError(f"the feeder took the lock first every time ({attempts} runs)")


def _lock_ops(out):
    import json

    records = [json.loads(x) for p in sorted(out.glob("*.jsonl")) for x in p.read_text().splitlines()]
    threads = {r["id"]: r for r in records if r["k"] == "thread"}
    [registry] = [r["id"] for r in records if r["k"] == "lock" and r.get("expr") == "registry"]
    # (a file holds each thread's events in batches: in time order, not across threads)
    return [(threads[r["th"]], r["op"]) for r in sorted(records, key=lambda r: r.get("ts", 0))
            if r["k"] == "ev" and r["obj"] == registry]


def test_a_hang_behind_a_thread_that_took_the_lock_ahead_of_the_waiter_is_critical(tmp_path):
    """The feeder waits for the registry while the main thread holds it; the main
    thread lets it go and takes it back before the feeder wakes up, then joins the
    feeder: a hang (as CPython's ProcessPoolExecutor shutdown, gh-125451). The
    feeder's wait began before that hold: it was reported as a stall that "no
    wait-for cycle explains" (only attempts after the hold counted)."""
    proc, doc, script = run_barging(tmp_path, hold=True)
    assert proc.returncode == -9, proc.stderr
    [f] = kinds(doc, "wait-cycle")
    assert f["severity"] == "critical" and f["details"]["hung"] is True
    assert f["title"] == ("Hang: thread 'MainThread' waits for feeder while holding 'registry', "
                          "which thread 'feeder' is blocked on")
    waiter, signaller = f["steps"]
    assert waiter["site"].endswith(f"svc.py:{line(script, 'joins')}")
    assert waiter["holds"][0]["acquired_at"].endswith(f"svc.py:{line(script, 'barges')}")
    assert signaller["actor"]["name"] == "feeder"
    assert signaller["site"].endswith(f"svc.py:{line(script, 'feeder-blocks')}")
    assert not kinds(doc, "stalled")


def test_the_same_barging_with_the_lock_let_go_before_the_join_is_quiet(tmp_path):
    proc, doc, _ = run_barging(tmp_path, hold=False)
    assert proc.returncode == 0, proc.stderr
    assert not kinds(doc, "wait-cycle") and not kinds(doc, "stalled")
    assert not [f for f in doc["findings"] if f["severity"] in ("error", "critical")]
