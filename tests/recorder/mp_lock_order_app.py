"""A lock-order bug that exists only in worker processes of multiprocessing (Process,
Pool, ProcessPoolExecutor) with the start method given as argument: run by
test_process_fidelity under ``lockscope run``."""
import multiprocessing as mp
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor


def inversion(tag):
    """Two threads of this process take a and b in opposite orders (staggered, so
    this run does not hang): a lock-order bug that exists only in the worker."""
    a = threading.Lock()  # mark: lock-a
    b = threading.Lock()  # mark: lock-b

    def one():
        with a:
            if b.acquire(timeout=5):
                b.release()
        time.sleep(0.3)

    def two():
        time.sleep(0.15)
        with b:
            if a.acquire(timeout=5):
                a.release()

    ts = [threading.Thread(target=f) for f in (one, two)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(10)
    return tag


if __name__ == "__main__":
    ctx = mp.get_context(sys.argv[1])
    p = ctx.Process(target=inversion, args=("process",))
    p.start()
    p.join(30)
    with ctx.Pool(1) as pool:
        print(pool.apply(inversion, ("pool",)))
        pool.close()
        pool.join()
    with ProcessPoolExecutor(1, mp_context=ctx) as ex:
        print(ex.submit(inversion, "executor").result(timeout=30))
    print("exit codes", p.exitcode)
