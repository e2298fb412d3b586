"""Two code paths take `sessions` and `users` in opposite orders (asyncio tasks).

Task ``login`` takes sessions, awaits a (simulated) database call, then takes
users; task ``rename`` does the same in the other order. Both tasks are alive at
once and nothing orders them, but ``rename`` starts 50 ms after ``login`` is done
with both locks, so this run does not hang. Had ``rename`` taken users while
``login`` was at its await, both tasks would wait forever.

The analyzer must report exactly one ``potential-deadlock`` (error) on the
asyncio locks ``sessions`` (created line 28) and ``users`` (created line 29):

* task ``login``: holds sessions (taken in ``login`` line 37), requests users
  in ``login`` line 39;
* task ``rename``: holds users (taken in ``rename`` line 45), requests sessions
  in ``rename`` line 47.

No ``held-across-await``: while a task holds a lock across its await no other
task runs. Exit status 0; 3 if the stagger failed and the tasks deadlocked.
"""
import asyncio
import sys

try:
    from recorder import name as label
except ImportError:
    def label(obj, _name): return obj

sessions = label(asyncio.Lock(), "sessions")  # mark: create-sessions
users = label(asyncio.Lock(), "users")  # mark: create-users


async def db_call():
    await asyncio.sleep(0.001)


async def login():
    async with sessions:  # mark: login-sessions
        await db_call()
        async with users:  # mark: login-users
            pass


async def rename():
    await asyncio.sleep(0.05)  # arrive after login is done
    async with users:  # mark: rename-users
        await db_call()
        async with sessions:  # mark: rename-sessions
            pass


async def amain() -> int:
    # rename is created first so that its first step (the sleep) has already
    # run when login takes its locks: no other task runs while a lock is held.
    tasks = [asyncio.create_task(rename(), name="rename"),
             asyncio.create_task(login(), name="login")]
    done, pending = await asyncio.wait(tasks, timeout=5)
    if pending:
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        print("unexpected: login and rename deadlocked", file=sys.stderr)
        return 3
    print("done: login and rename both finished")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(amain()))
