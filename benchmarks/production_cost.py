"""What full recording costs realistic programs: whole-process CPU, trace volume, drops.

Run: ``python benchmarks/production_cost.py [--quick] [--rounds N] [--only NAME ...]
[--json] [--mode summary] [--instructions]``.  Each workload runs as its own program,
in a fresh process per round, once bare and once recorded (``LOCKSCOPE_OUT`` set, default settings: the start-up
hook starts the recorder at ``import threading``, as in production).  The order of
the two alternates from round to round, and the figures are medians:

* ``cpu x``: the whole process's CPU (user + system, from ``wait4``: start-up,
  the writer thread and the last flush included), traced / bare, median of the
  per-round ratios;
* ``work x``: the same for the CPU the workload itself took (measured inside the
  child, from before the workload to after it; without start-up and the final
  flush at exit);
* events/s and bytes/s: ``ev`` records and trace bytes per second of the traced
  program's wall time; ``dropped``: events counted in ``dropped`` records, as a
  share of all events;
* ``writer``: the recorder's own account of its writer's CPU time (the ``cost`` of
  the trace's ``end`` record) as a share of the traced process's CPU: the rest of
  the difference is spent in the program's threads;
* ``rss``: the process's peak resident memory (``ru_maxrss``), bare -> traced,
  medians.

Workloads (``--quick`` divides their sizes by 20, for CI smoke runs):

* ``queue`` — a producer thread puts 100,000 items on a ``queue.Queue``, a consumer
  thread gets them;
* ``executor`` — ``ThreadPoolExecutor(4).map`` over 30,000 tiny jobs;
* ``logging`` — 4 threads each log 40,000 records through a formatted
  ``StreamHandler`` to ``os.devnull``;
* ``primitives`` — 10,000 times: a ``Lock``, ``RLock``, ``Condition``, ``Event``,
  ``queue.Queue`` and ``concurrent.futures.Future`` created (and the lock used once);
* ``busy128`` — 128 threads, each 10,000 ``with lock:`` around a dict update on one
  of 16 shared locks (the writer cannot keep up: this one is about drops);
* ``keyed`` — a table of 50,000 entries with a ``Lock`` each (made when the entry
  is), which 4 threads each update once under its lock: per-key locks kept alive,
  whose memory is the figure to watch;
* ``http`` — a ``ThreadingHTTPServer`` on 127.0.0.1 (a thread per connection, a
  handler that takes a lock to update a shared counter and logs the request), under
  a bounded load from a client in another process: 4 client threads, 5,000 requests
  to warm the server up, then 1,500 measured.  Only the server is measured.  Its
  ``serve x`` is the CPU it took from its first measured request to the last
  (``serve_cpu``: start-up, imports, the warm-up and exit left out), traced / bare,
  and ``us/req`` what recording added to each request: the figure of a server that
  runs for hours, where ``cpu x`` also counts the start-up of a program that lives
  a few seconds.  (The warm-up fills what summary mode remembers of threads that
  ended unshown, 4,096 of them: before that, each request's thread also grows the
  process's memory, page faults included, which a server pays once);
* ``aio`` — an asyncio stream server on 127.0.0.1 (a task per connection, each
  request a line: the handler takes an ``asyncio.Lock`` to update a shared counter
  and logs the request), under a bounded load from a client in another process: 4
  connections kept open, 20,000 requests in all, one at a time on each.  Measured as
  ``http`` (``serve x``, ``us/req``);
* ``startup`` — a program that imports ``threading`` and exits: what starting (and
  ending) a recording costs once, whatever the program then does (``+ms``).

Before measuring, the recorder's bytecode is cached (``compileall``), as ``pip
install`` does: in a source checkout under ``PYTHONDONTWRITEBYTECODE=1`` every traced
process would otherwise compile the recorder's edited modules, 10-20 ms of CPU that
no installed copy pays.  The machine may be shared and noisy: compare ratios from
one run, not across runs.
``--instructions`` counts the instructions of the whole process under callgrind
instead (sizes / 5, one bare and one traced run each), a figure the load does not
move.  ``http`` and ``aio``: the server's instructions per request, from runs of
1,000 and 4,000 requests (``http``: each after the same 5,000 warm-up requests as the
CPU figure, so the difference is a warmed-up server's), bare and traced alternating,
``--rounds`` of them (default 3; round k runs with PYTHONHASHSEED=k), one client
thread: the median of the per-round ratios, and their range.  ``--by-thread`` also
splits each round's figures into the server's main thread (accept, ``Thread()``,
``Thread.start``), the writer, and the other threads (its request threads).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# (name, sizes at full scale): each size is divided by 20 with --quick.
SIZES = {
    "queue": {"items": 100_000},
    "executor": {"jobs": 30_000},
    "logging": {"threads": 4, "records": 40_000},
    "primitives": {"loops": 10_000},
    "busy128": {"threads": 128, "pairs": 10_000},
    "keyed": {"entries": 50_000, "threads": 4},
    "http": {"requests": 1_500, "clients": 4, "warm": 5_000},
    "aio": {"requests": 20_000, "clients": 4},
    "startup": {},
}


# ------------------------------------------------------------------ workloads
# Each runs inside the child process (recorded or not) and returns nothing.

def w_queue(items: int) -> None:
    import queue
    import threading

    q: queue.Queue = queue.Queue()

    def produce() -> None:
        for i in range(items):
            q.put(i)

    def consume() -> None:
        for _ in range(items):
            q.get()

    threads = [threading.Thread(target=produce), threading.Thread(target=consume)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def w_executor(jobs: int) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as ex:
        total = sum(ex.map(abs, range(jobs)))
    assert total == jobs * (jobs - 1) // 2


def w_logging(threads: int, records: int) -> None:
    import logging
    import threading

    log = logging.getLogger("production_cost")
    log.propagate = False
    log.setLevel(logging.INFO)
    with open(os.devnull, "w") as sink:
        handler = logging.StreamHandler(sink)
        handler.setFormatter(logging.Formatter("%(asctime)s %(threadName)s %(levelname)s "
                                               "%(name)s: %(message)s"))
        log.addHandler(handler)

        def work(k: int) -> None:
            for i in range(records):
                log.info("worker %d record %d", k, i)

        ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        log.removeHandler(handler)


def w_primitives(loops: int) -> None:
    import queue
    import threading
    from concurrent.futures import Future

    keep = []
    for i in range(loops):
        lock = threading.Lock()
        with lock:
            pass
        made = (lock, threading.RLock(), threading.Condition(), threading.Event(),
                queue.Queue(), Future())
        if i % 100 == 0:  # some live on, most are freed at once
            keep.append(made)


def w_busy128(threads: int, pairs: int) -> None:
    import threading

    locks = [threading.Lock() for _ in range(16)]
    shared: dict = {}

    def work(k: int) -> None:
        lock = locks[k % 16]
        for i in range(pairs):
            with lock:
                shared[k] = i

    ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def w_keyed(entries: int, threads: int) -> None:
    import threading

    table = {k: [threading.Lock(), 0] for k in range(entries)}

    def work() -> None:
        for entry in table.values():
            with entry[0]:
                entry[1] += 1

    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert all(entry[1] == threads for entry in table.values())


def w_http(requests: int, clients: int, warm: int = 0) -> dict:
    """The server side: serves until the client (another process) asks it to stop;
    the process's CPU from the first request after the warm-up to the stop
    (``serve_cpu``)."""
    import logging
    import resource
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    log = logging.getLogger("production_cost.http")
    log.propagate = False
    log.setLevel(logging.INFO)
    sink = open(os.devnull, "w")  # noqa: SIM115 (open for the server's life)
    log.addHandler(logging.StreamHandler(sink))
    hits: dict[str, int] = {}
    hits_lock = threading.Lock()
    serving: list[float] = []  # the process's CPU at the first request, and at /stop

    def cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with hits_lock:
                if (not serving and not self.path.startswith("/warm/")) or self.path == "/stop":
                    serving.append(cpu())
                hits[self.path] = hits.get(self.path, 0) + 1
                n = hits[self.path]
            body = json.dumps({"path": self.path, "hits": n}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            if self.path == "/stop":
                threading.Thread(target=server.shutdown).start()

        def log_message(self, fmt: str, *args) -> None:
            log.info("%s " + fmt, self.address_string(), *args)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    server.serve_forever(poll_interval=0.05)
    server.server_close()
    sink.close()
    return {"serve_cpu": serving[-1] - serving[0]}


def w_aio(requests: int, clients: int) -> dict:
    """The server side of ``aio``: serves until the client asks it to stop; the
    process's CPU from the first request to the stop (``serve_cpu``)."""
    import asyncio
    import logging
    import resource

    log = logging.getLogger("production_cost.aio")
    log.propagate = False
    log.setLevel(logging.INFO)
    sink = open(os.devnull, "w")  # noqa: SIM115 (open for the server's life)
    log.addHandler(logging.StreamHandler(sink))
    serving: list[float] = []  # the process's CPU at the first request, and at STOP

    def cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    async def main() -> None:
        hits: dict[bytes, int] = {}
        hits_lock = asyncio.Lock()
        stop = asyncio.Event()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peer = writer.get_extra_info("peername")
            try:
                while line := await reader.readline():
                    async with hits_lock:
                        if not serving or line == b"STOP\n":
                            serving.append(cpu())
                        hits[line] = n = hits.get(line, 0) + 1
                    writer.write(b"%d\n" % n)
                    await writer.drain()
                    log.info("%s %r %d", peer, line, n)
                    if line == b"STOP\n":
                        stop.set()
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
        async with server:
            await stop.wait()

    asyncio.run(main())
    sink.close()
    return {"serve_cpu": serving[-1] - serving[0]}


def w_startup() -> None:
    """Nothing: the process imported threading (the start-up hook started recording)."""


CLIENT = r"""
import http.client, sys, threading
port, requests, clients = map(int, sys.argv[1:4])
warm = int(sys.argv[4]) if len(sys.argv) > 4 else 0
def run(n, path):
    for i in range(n // clients):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("GET", path % (i % 50))
        r = c.getresponse(); r.read(); c.close()
for n, path in ((warm, "/warm/%d"), (requests, "/item/%d")):
    ts = [threading.Thread(target=run, args=(n, path)) for k in range(clients)]
    for t in ts: t.start()
    for t in ts: t.join()
c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
c.request("GET", "/stop"); c.getresponse().read(); c.close()
"""

AIO_CLIENT = r"""
import socket, sys, threading
port, requests, clients = map(int, sys.argv[1:4])
def run(k):
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        f = s.makefile("rb")
        for i in range(requests // clients):
            s.sendall(b"GET /item/%d\n" % (i % 50))
            assert f.readline()
ts = [threading.Thread(target=run, args=(k,)) for k in range(clients)]
for t in ts: t.start()
for t in ts: t.join()
with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
    s.sendall(b"STOP\n"); s.makefile("rb").readline()
"""
# The servers: their client, run in another process once the server printed its port.
CLIENTS = {"http": CLIENT, "aio": AIO_CLIENT}

WORKLOADS = {"queue": w_queue, "executor": w_executor, "logging": w_logging,
             "primitives": w_primitives, "busy128": w_busy128, "keyed": w_keyed,
             "http": w_http, "aio": w_aio, "startup": w_startup}


def child_main(name: str, sizes: dict) -> None:
    """Run one workload in this process; print its CPU and wall time as JSON."""
    import resource
    import threading  # noqa: F401  (the start-up hook starts recording here)

    if os.environ.get("LOCKSCOPE_OUT") and "recorder" not in sys.modules:
        # No start-up hook (lockscope not installed in this interpreter): start here.
        sys.path.insert(0, str(ROOT))
        from recorder import _autostart

        _autostart.start_from_env()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    extra = WORKLOADS[name](**sizes) or {}
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    print(json.dumps({"work_cpu": cpu, "work_wall": wall, **extra}), flush=True)


# ------------------------------------------------------------------ parent

def _trace_counts(folder: str) -> dict:
    events = dropped = nbytes = records = writer_ns = cost_cpu_ns = 0
    for path in Path(folder).glob("*.jsonl"):
        nbytes += path.stat().st_size
        with open(path, "rb") as fh:
            for line in fh:
                records += 1
                if line.startswith(b'{"k":"ev"'):
                    events += 1
                elif line.startswith(b'{"k":"dropped"'):
                    dropped += json.loads(line)["count"]
                elif line.startswith(b'{"k":"end"') and b'"reason":"rotate"' not in line:
                    cost = json.loads(line).get("cost") or {}  # (the recorder's own account)
                    writer_ns, cost_cpu_ns = cost.get("writer_ns", 0), cost.get("cpu_ns", 0)
    return {"events": events, "dropped": dropped, "bytes": nbytes, "records": records,
            "writer_ns": writer_ns, "cost_cpu_ns": cost_cpu_ns}


MODE = "full"  # the recording mode of the traced rounds (--mode)

# pip install compiles a package's bytecode; a source checkout under
# PYTHONDONTWRITEBYTECODE=1 (set on this machine) has stale or no .pyc files, and
# every traced process would compile the recorder's changed modules (10+ ms each).
COMPILE_RECORDER = ("import compileall, os, sys, recorder; "
                    "ok = compileall.compile_dir(os.path.dirname(recorder.__file__), quiet=1); "
                    "sys.exit(0 if ok else 1)")


def compile_recorder_bytecode() -> bool:
    """Cache the bytecode of the recorder the children import, as an install does;
    False where it cannot be written (the traced rounds then compile it each time)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("LOCKSCOPE_OUT", "LOCKSCOPE_MODE", "PYTHONDONTWRITEBYTECODE")}
    done = subprocess.run([sys.executable, "-c", COMPILE_RECORDER], env=env,
                          capture_output=True, timeout=120)
    return done.returncode == 0


def run_child(name: str, sizes: dict, trace_dir: str | None, timeout: float) -> dict:
    """One round of one workload in a fresh process: its rusage (wait4), wall time,
    its own work figures and, when recorded, what its trace holds."""
    env = dict(os.environ)
    env.pop("LOCKSCOPE_OUT", None)
    env.pop("LOCKSCOPE_MODE", None)
    if trace_dir:
        env["LOCKSCOPE_OUT"] = trace_dir
        env["LOCKSCOPE_MODE"] = MODE
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name,
           "--sizes", json.dumps(sizes)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    client = None
    try:
        if name in CLIENTS:
            port = json.loads(proc.stdout.readline())["port"]
            client = subprocess.run([sys.executable, "-c", CLIENTS[name], str(port),
                                     str(sizes["requests"]), str(sizes["clients"]),
                                     str(sizes.get("warm", 0))],
                                    capture_output=True, text=True, timeout=timeout)
            if client.returncode:
                raise RuntimeError(f"{name} client failed: {client.stderr.strip()[-300:]}")
        deadline = time.monotonic() + timeout
        while True:  # wait4 gives this one child's rusage (the client is not in it)
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"{name}: timed out after {timeout} s")
            time.sleep(0.005)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out, err = proc.stdout.read(), proc.stderr.read()
    finally:
        if proc.returncode is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    if proc.returncode:
        raise RuntimeError(f"{name} exited {proc.returncode}: {err.strip()[-500:]}")
    work = json.loads(out.strip().splitlines()[-1])
    res = {"cpu": ru.ru_utime + ru.ru_stime, "wall": wall,
           "rss_mb": ru.ru_maxrss / 1024, **work}  # (Linux: KiB)
    if trace_dir:
        res.update(_trace_counts(trace_dir))
    return res


def measure(name: str, sizes: dict, rounds: int, timeout: float) -> dict:
    """Alternate bare and traced rounds of one workload; medians of the figures."""
    bare: list[dict] = []
    traced: list[dict] = []
    for r in range(rounds):
        for mode in (("bare", "traced") if r % 2 == 0 else ("traced", "bare")):
            if mode == "bare":
                bare.append(run_child(name, sizes, None, timeout))
            else:
                with tempfile.TemporaryDirectory(prefix="lockscope-cost-") as d:
                    traced.append(run_child(name, sizes, d, timeout))
    med = statistics.median
    events = med([t["events"] for t in traced])
    dropped = med([t["dropped"] for t in traced])
    serve = {}
    if "serve_cpu" in bare[0]:  # (a server: http, aio)
        serve = {
            "serve_ratio": med([t["serve_cpu"] / max(b["serve_cpu"], 1e-6)
                                for t, b in zip(traced, bare, strict=True)]),
            "us_per_request": med([(t["serve_cpu"] - b["serve_cpu"]) / sizes["requests"] * 1e6
                                   for t, b in zip(traced, bare, strict=True)]),
        }
    return {
        "workload": name, "mode": MODE, "sizes": sizes, "rounds": rounds,
        "bare_cpu_s": med([b["cpu"] for b in bare]),
        "traced_cpu_s": med([t["cpu"] for t in traced]),
        "cpu_ratio": med([t["cpu"] / b["cpu"] for t, b in zip(traced, bare, strict=True)]),
        "bare_work_cpu_s": med([b["work_cpu"] for b in bare]),
        "traced_work_cpu_s": med([t["work_cpu"] for t in traced]),
        "work_ratio": med([t["work_cpu"] / max(b["work_cpu"], 1e-6)
                           for t, b in zip(traced, bare, strict=True)]),
        "traced_wall_s": med([t["wall"] for t in traced]),
        "bare_rss_mb": med([b["rss_mb"] for b in bare]),
        "traced_rss_mb": med([t["rss_mb"] for t in traced]),
        "events": events,
        "events_per_s": med([t["events"] / t["wall"] for t in traced]),
        "bytes": med([t["bytes"] for t in traced]),
        "bytes_per_s": med([t["bytes"] / t["wall"] for t in traced]),
        "bytes_per_event": med([t["bytes"] / max(1, t["events"]) for t in traced]),
        "dropped": dropped,
        "dropped_pct": 100 * dropped / max(1, events + dropped),
        # the trace's own account (`cost` of its end record): the writer's CPU time,
        # as a share of the traced process's CPU (rusage)
        "writer_s": med([t["writer_ns"] / 1e9 for t in traced]),
        "writer_share": med([t["writer_ns"] / 1e9 / max(t["cpu"], 1e-6) for t in traced]),
        **serve,
    }


def instructions(name: str, sizes: dict, traced: bool, timeout: float,
                 hash_seed: int | None = None) -> int:
    """Instructions the whole process runs (all threads), counted by callgrind: a
    figure the machine's load does not move (thread interleavings still do, a
    little: contention takes the slow paths).  ``hash_seed``: the server's
    PYTHONHASHSEED (see server_instructions)."""
    return sum(_callgrind(name, sizes, traced, timeout, hash_seed, False).values())


def _thread_group(text: bytes, first: bool) -> str:
    """Which thread a callgrind file of ``--separate-threads=yes`` (its ``text``)
    counted: the main thread (valgrind's thread 1), the writer (the only other
    thread that takes the threads' events), or another."""
    if first:
        return "main"
    return "writer" if b"take_states" in text or b"thread_time_ns" in text else "others"


def _callgrind(name: str, sizes: dict, traced: bool, timeout: float,
               hash_seed: int | None, by_thread: bool) -> dict[str, int]:
    """instructions() as {"all": n}, or (by_thread) split into the main thread's,
    the writer's and the other threads' (a server's request threads)."""
    env = dict(os.environ)
    if hash_seed is not None:
        env["PYTHONHASHSEED"] = str(hash_seed)
    env.pop("LOCKSCOPE_OUT", None)
    env.pop("LOCKSCOPE_MODE", None)
    counts: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="lockscope-cost-") as d, \
            tempfile.TemporaryDirectory(prefix="lockscope-callgrind-") as cg:
        if traced:
            env["LOCKSCOPE_OUT"] = d
            env["LOCKSCOPE_MODE"] = MODE
            if name in CLIENTS:
                # The writer's timed drains as far apart in requests as a real
                # server's: under callgrind the server answers about 150 requests a
                # second, so a drain every 5 s comes every ~750 requests, near a
                # real server's ~500 at the default 0.25 s (0.25 s under callgrind
                # would count each drain's fixed cost some 50 times over).  Not none
                # at all: the states of ended threads are let go at a drain, and
                # without drains they pile up (a heap and a state list that grow
                # with every request, which no real server has).
                env["LOCKSCOPE_FLUSH_INTERVAL"] = "5"
        out = ["--separate-threads=yes", f"--callgrind-out-file={cg}/cg"] if by_thread \
            else ["--callgrind-out-file=/dev/null"]
        proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", *out, sys.executable,
             str(Path(__file__).resolve()), "--child", name, "--sizes", json.dumps(sizes)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            if name in CLIENTS:  # (the clients in another process, not counted)
                port = json.loads(proc.stdout.readline())["port"]
                subprocess.run([sys.executable, "-c", CLIENTS[name], str(port), str(sizes["requests"]),
                                str(sizes["clients"]), str(sizes.get("warm", 0))],
                               check=True, capture_output=True, timeout=timeout)
            _out, err = proc.communicate(timeout=timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        m = re.search(r"refs:\s+([\d,]+)", err)
        if proc.returncode or m is None:
            raise RuntimeError(f"{name}: callgrind failed: {err.strip()[-500:]}")
        if not by_thread:
            return {"all": int(m.group(1).replace(",", ""))}
        # (one file a valgrind thread id, cg-01 the main thread; ids are reused
        # once a thread ended, so a file may count many request threads)
        for path in sorted(Path(cg).glob("cg-*")):
            text = path.read_bytes()
            total = re.search(rb"^(?:summary|totals): (\d+)", text, re.M)
            group = _thread_group(text, path.name.endswith("-01"))
            counts[group] = counts.get(group, 0) + (int(total.group(1)) if total else 0)
    return counts


# Requests of the two runs whose difference gives a server's instructions per
# request, and the warm-up requests each run serves first: the CPU figure's (SIZES),
# so that both measure a server past its start (its heap grown, summary mode's
# memory of the last 4,096 threads that ended unshown full), not its first few
# hundred requests.  (aio: no thread per request, no warm-up.)
REQUEST_COUNTS = {"http": (1_000, 4_000), "aio": (1_000, 4_000)}
WARM_UP = {"http": SIZES["http"]["warm"], "aio": 0}


def server_instructions(name: str, traced: bool, timeout: float, hash_seed: int,
                        by_thread: bool = False) -> dict[str, float]:
    """Instructions per request of a server: the difference of two runs over the
    difference of their requests (start-up, warm-up and shut-down cancel out), the
    writer's timed drains spaced as a real server's (see instructions()); as
    {"all": n}, or split as _callgrind() splits it (``by_thread``).

    One client thread: with two, requests overlap, and under callgrind (which runs
    one thread at a time, switching at its own time slices) how often a thread is
    switched out holding the GIL or a lock varied so much that two identical runs
    of 6,000 requests differed by 6.3M instructions (+-2k a request in the
    difference); with one, by 0.7M.  Both runs of a round, bare and traced, use
    the round's ``hash_seed``: string hashes move which lookups collide in dicts
    and in CPython's type cache, and a pair of runs should differ by the recorder,
    not by their hashes."""
    lo, hi = REQUEST_COUNTS[name]
    warm = {"warm": WARM_UP[name]} if WARM_UP[name] else {}
    runs = [_callgrind(name, {"requests": n, "clients": 1, **warm}, traced, timeout,
                       hash_seed, by_thread) for n in (lo, hi)]
    return {g: (runs[1].get(g, 0) - runs[0].get(g, 0)) / (hi - lo)
            for g in {*runs[0], *runs[1]}}


def _fmt(r: dict) -> str:
    serve = (f"  serve {r['serve_ratio']:5.3f}x ({r['us_per_request']:+.1f} us/req)"
             if "serve_ratio" in r else "")
    return (f"  {r['workload']:11} cpu {r['cpu_ratio']:5.2f}x  work {r['work_ratio']:5.2f}x"
            f"  ({r['bare_cpu_s']:6.2f} -> {r['traced_cpu_s']:6.2f} s,"
            f" {(r['traced_cpu_s'] - r['bare_cpu_s']) * 1e3:+.0f} ms){serve}"
            f"  {r['events_per_s'] / 1e3:8.0f} k ev/s {r['bytes_per_s'] / 1e6:7.1f} MB/s"
            f"  {r['bytes_per_event']:5.1f} B/ev"
            f"  dropped {r['dropped']:.0f} ({r['dropped_pct']:.1f} %)"
            f"  writer {100 * r['writer_share']:4.1f} %"
            f"  rss {r['bare_rss_mb']:4.0f} -> {r['traced_rss_mb']:4.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="sizes / 20, 1 round (smoke test)")
    ap.add_argument("--rounds", type=int, default=None, help="rounds per workload (default 5)")
    ap.add_argument("--only", nargs="+", choices=sorted(WORKLOADS), help="these workloads")
    ap.add_argument("--json", action="store_true", help="one JSON object per workload")
    ap.add_argument("--mode", choices=("full", "summary"), default="full",
                    help="recording mode of the traced rounds (LOCKSCOPE_MODE)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per process")
    ap.add_argument("--instructions", action="store_true",
                    help="count instructions under callgrind instead (sizes / 5, one run each)")
    ap.add_argument("--by-thread", action="store_true",
                    help="with --instructions: a server's figure split into its main "
                         "thread's, the writer's and the other threads'")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--sizes", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child_main(args.child, json.loads(args.sizes))
        return
    global MODE
    MODE = args.mode
    rounds = args.rounds or (1 if args.quick else 5)
    names = args.only or list(WORKLOADS)
    if not compile_recorder_bytecode():
        print("warning: the recorder's bytecode could not be cached: every traced "
              "process compiles it", file=sys.stderr)
    if args.instructions:
        print(f"instructions, whole process, callgrind (python {sys.version.split()[0]}), "
              "sizes / 5:", flush=True)
        for name in names:
            if name in CLIENTS:
                # (alternating: a round's bare and traced runs side by side, with
                # the round's hash seed)
                pairs = []
                for seed in range(1, (args.rounds or 3) + 1):
                    bare_g, traced_g = (
                        server_instructions(name, traced, args.timeout, seed, args.by_thread)
                        for traced in (False, True))
                    b, t = sum(bare_g.values()), sum(traced_g.values())
                    pairs.append((b, t))
                    print(f"    round {seed}: bare {b / 1e3:8.1f} k   traced {t / 1e3:8.1f} k"
                          f"   {t / b:5.3f}x", flush=True)
                    if args.by_thread:
                        print("      " + "   ".join(
                            f"{g} {bare_g.get(g, 0) / 1e3:.1f} -> {traced_g.get(g, 0) / 1e3:.1f} k"
                            for g in ("main", "writer", "others")), flush=True)
                ratios = sorted(t / b for b, t in pairs)
                bare = statistics.median(b for b, _ in pairs)
                traced = statistics.median(t for _, t in pairs)
                print(f"  {name:11} bare {bare / 1e3:8.1f} k   traced {traced / 1e3:8.1f} k"
                      f"   {statistics.median(ratios):5.3f}x ({ratios[0]:.3f}-{ratios[-1]:.3f},"
                      f" {len(pairs)} rounds)   (per request)", flush=True)
                continue
            sizes = {k: (max(1, v // 5) if k not in ("threads", "clients") else v)
                     for k, v in SIZES[name].items()}
            bare = instructions(name, sizes, False, args.timeout)
            traced = instructions(name, sizes, True, args.timeout)
            print(f"  {name:11} bare {bare / 1e6:8.0f} M   traced {traced / 1e6:8.0f} M"
                  f"   {traced / bare:5.2f}x", flush=True)
        return
    if not args.json:
        print(f"lockscope production cost (python {sys.version.split()[0]}, "
              f"{os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}), "
              f"median of {rounds} alternating rounds, default settings, {MODE} mode:", flush=True)
    for name in names:
        sizes = {k: (max(1, v // 20) if args.quick and k not in ("threads", "clients") else v)
                 for k, v in SIZES[name].items()}
        res = measure(name, sizes, rounds, args.timeout)
        print(json.dumps(res) if args.json else _fmt(res), flush=True)


if __name__ == "__main__":
    main()
