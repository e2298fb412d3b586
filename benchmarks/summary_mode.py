"""Trace volume and CPU of summary mode against full recording and no recording.

``python benchmarks/summary_mode.py`` runs each workload at two traffic levels (1x
and 4x the work), in a fresh process per run, alternating bare / full / summary for
``--rounds`` rounds, and prints per workload, mode and level: process CPU (user +
system, all threads, the recorder's writer included; median of the rounds), CPU
relative to bare, trace bytes, ``ev`` lines, dropped events, and bytes per unit of
work. In summary mode the bytes should depend on the program's distinct behaviour,
not on its traffic: about the same at 1x and 4x.

Workloads (``--workload NAME`` runs one):

* ``queue`` — a producer thread puts N items on a ``queue.Queue``, a consumer gets
  them (N = 25,000 at 1x);
* ``http`` — a ``ThreadingHTTPServer`` on 127.0.0.1 (a thread per connection) with
  a handler that takes a lock around a shared counter and logs through ``logging``;
  4 client threads make N requests in total (N = 400 at 1x), one connection each;
* ``pool`` — a ``ThreadPoolExecutor(4)`` maps N tiny jobs that each take one of two
  locks (N = 5,000 at 1x).

``--http-minutes M`` instead runs production_cost.py's HTTP server (a
``ThreadingHTTPServer``, a thread per connection, a lock and ``logging`` in the
handler) recorded in summary mode for M minutes under full local load: a client
process with ``--clients`` threads (default 4) making requests back to back, one
connection each, until the time is up. It prints the requests served, the
server's CPU, the trace's size and bytes per second, and its records by kind, and
exits 1 if the trace is over ``--max-mb`` (default 5). CPU against bare for the
same server: ``python benchmarks/production_cost.py --only http --mode summary``.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _queue(n: int) -> None:
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=100)

    def produce() -> None:
        for i in range(n):
            q.put(i)
        q.put(None)

    def consume() -> None:
        while q.get() is not None:
            pass

    threads = [threading.Thread(target=produce), threading.Thread(target=consume)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _http(n: int) -> None:
    import http.client
    import logging
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    log = logging.getLogger("bench")
    log.addHandler(logging.NullHandler())
    log.setLevel(logging.INFO)
    counter_lock = threading.Lock()
    hits = [0]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            with counter_lock:
                hits[0] += 1
            log.info("GET %s", self.path)
            body = b"ok\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    serving.start()

    def client(k: int) -> None:
        for _ in range(n // 4):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", f"/item/{k}")
            conn.getresponse().read()
            conn.close()

    clients = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for t in clients:
        t.start()
    for t in clients:
        t.join()
    server.shutdown()
    serving.join()
    server.server_close()
    assert hits[0] == n // 4 * 4


def _pool(n: int) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    locks = [threading.Lock(), threading.Lock()]
    total = [0]

    def job(i: int) -> int:
        with locks[i % 2]:
            total[0] += i
        return i

    with ThreadPoolExecutor(4) as pool:
        for _ in pool.map(job, range(n)):
            pass


WORKLOADS = {"queue": (_queue, 25_000), "http": (_http, 400), "pool": (_pool, 5_000)}


def child(workload: str, n: int, mode: str, out: str) -> None:
    """Run one workload in this process and print its measurements as JSON."""
    if mode != "bare":
        import recorder

        recorder.start(out, mode=mode)
    WORKLOADS[workload][0](n)
    if mode != "bare":
        recorder.stop()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"cpu_s": ru.ru_utime + ru.ru_stime}))


def measure(workload: str, n: int, mode: str) -> dict:
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.run([sys.executable, __file__, "--child", workload, str(n), mode, out],
                              capture_output=True, text=True, timeout=600, cwd=ROOT,
                              env=dict(os.environ, PYTHONPATH=ROOT))
        if proc.returncode != 0:
            raise SystemExit(f"{workload} {mode} failed:\n{proc.stderr}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        size = events = dropped = 0
        for path in glob.glob(os.path.join(out, "*.jsonl")):
            size += os.path.getsize(path)
            with open(path, "rb") as fh:
                for line in fh:
                    if line.startswith(b'{"k":"ev"'):
                        events += 1
                    elif line.startswith(b'{"k":"dropped"'):
                        dropped += json.loads(line)["count"]
        result.update(bytes=size, events=events, dropped=dropped)
        return result


TIMED_CLIENT = r"""
import http.client, sys, threading, time
port, seconds, clients = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
deadline = time.monotonic() + seconds
done = [0] * clients
def run(k):
    while time.monotonic() < deadline:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("GET", "/item/%d" % (done[k] % 50))
        r = c.getresponse(); r.read(); c.close()
        done[k] += 1
ts = [threading.Thread(target=run, args=(k,)) for k in range(clients)]
for t in ts: t.start()
for t in ts: t.join()
c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
c.request("GET", "/stop"); c.getresponse().read(); c.close()
print(sum(done))
"""


def http_minutes(minutes: float, clients: int, max_mb: float) -> int:
    """The HTTP server recorded in summary mode for ``minutes`` at full local load."""
    with tempfile.TemporaryDirectory(prefix="lockscope-summary-http-") as out:
        env = dict(os.environ, LOCKSCOPE_OUT=out, LOCKSCOPE_MODE="summary")
        server = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "production_cost.py"), "--child", "http",
             "--sizes", json.dumps({"requests": 0, "clients": clients})],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        try:
            port = json.loads(server.stdout.readline())["port"]
            client = subprocess.run([sys.executable, "-c", TIMED_CLIENT, str(port),
                                     str(minutes * 60), str(clients)],
                                    capture_output=True, text=True, timeout=minutes * 60 + 300)
            if client.returncode:
                raise SystemExit(f"client failed: {client.stderr[-500:]}")
            _, status, ru = os.wait4(server.pid, 0)
            server.returncode = os.waitstatus_to_exitcode(status)
        finally:
            if server.returncode is None:
                server.kill()
                server.wait()
        if server.returncode:
            raise SystemExit(f"server exited {server.returncode}: {server.stderr.read()[-500:]}")
        requests = int(client.stdout.strip().splitlines()[-1])
        size = 0
        kinds: dict[str, int] = {}
        for path in glob.glob(os.path.join(out, "*.jsonl")):
            size += os.path.getsize(path)
            with open(path, "rb") as fh:
                for line in fh:
                    k = json.loads(line)["k"]
                    kinds[k] = kinds.get(k, 0) + 1
    seconds = minutes * 60
    cpu = ru.ru_utime + ru.ru_stime
    print(f"http server, summary mode, {minutes:g} min, {clients} client threads: "
          f"{requests} requests ({requests / seconds:.0f}/s), server CPU {cpu:.1f} s "
          f"({cpu / max(1, requests) * 1e6:.0f} us/request), trace {size / 1e6:.3f} MB "
          f"({size / seconds:.0f} bytes/s), records {dict(sorted(kinds.items()))}", flush=True)
    if size > max_mb * 1e6:
        print(f"over the {max_mb:g} MB bound", flush=True)
        return 1
    return 0


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workload", choices=sorted(WORKLOADS), action="append")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--http-minutes", type=float,
                    help="run the HTTP server in summary mode this long at full load instead")
    ap.add_argument("--clients", type=int, default=4, help="client threads of --http-minutes")
    ap.add_argument("--max-mb", type=float, default=5.0, help="trace size bound of --http-minutes")
    args = ap.parse_args()
    if args.http_minutes:
        raise SystemExit(http_minutes(args.http_minutes, args.clients, args.max_mb))
    results = []
    for workload in args.workload or list(WORKLOADS):
        base = WORKLOADS[workload][1]
        for scale in (1, 4):
            n = base * scale
            runs: dict[str, list[dict]] = {"bare": [], "full": [], "summary": []}
            for _ in range(args.rounds):
                for mode in runs:
                    runs[mode].append(measure(workload, n, mode))
            bare = statistics.median(r["cpu_s"] for r in runs["bare"])
            for mode, rs in runs.items():
                row = {"workload": workload, "work": n, "mode": mode,
                       "cpu_s": statistics.median(r["cpu_s"] for r in rs),
                       "bytes": int(statistics.median(r["bytes"] for r in rs)),
                       "events": int(statistics.median(r["events"] for r in rs)),
                       "dropped": max(r["dropped"] for r in rs)}
                row["cpu_vs_bare"] = row["cpu_s"] / bare if bare else None
                row["bytes_per_unit"] = row["bytes"] / n
                results.append(row)
                print(f"{workload:6} work={n:<7} {mode:8} cpu={row['cpu_s']:.3f}s "
                      f"({row['cpu_vs_bare']:.2f}x bare) bytes={row['bytes']:>10} "
                      f"ev={row['events']:>8} dropped={row['dropped']} "
                      f"bytes/unit={row['bytes_per_unit']:.1f}", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)


if __name__ == "__main__":
    main()
