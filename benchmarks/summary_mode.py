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


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workload", choices=sorted(WORKLOADS), action="append")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
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
