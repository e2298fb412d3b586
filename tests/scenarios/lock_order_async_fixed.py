"""Corrected twin of lock_order_async_bug.py: one helper takes both locks.

Every code path that needs `sessions` and `users` goes through
``sessions_and_users()``, which always takes sessions before users. The tasks
run at the same time with no stagger.

The analyzer must report no deadlock-class finding and nothing at warning or
above. (Neither task awaits while holding a lock, so no ``held-across-await``.)

Exit status 0.
"""
import asyncio
import sys
from contextlib import asynccontextmanager

try:
    from recorder import name as label
except ImportError:
    def label(obj, _name): return obj

sessions = label(asyncio.Lock(), "sessions")  # mark: create-sessions
users = label(asyncio.Lock(), "users")  # mark: create-users


async def db_call():
    await asyncio.sleep(0.001)


@asynccontextmanager
async def sessions_and_users():
    """The one place that takes both locks, always sessions first."""
    async with sessions:  # mark: helper-sessions
        async with users:  # mark: helper-users
            yield


async def login():
    for _ in range(10):
        await db_call()  # I/O first, then the short critical section
        async with sessions_and_users():
            pass


async def rename():
    for _ in range(10):
        await db_call()
        async with sessions_and_users():
            pass


async def amain() -> int:
    tasks = [asyncio.create_task(login(), name="login"),
             asyncio.create_task(rename(), name="rename")]
    done, pending = await asyncio.wait(tasks, timeout=5)
    if pending:
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        print("unexpected: login and rename did not finish", file=sys.stderr)
        return 3
    print("done: login and rename both finished")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(amain()))
