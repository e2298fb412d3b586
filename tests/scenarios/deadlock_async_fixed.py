"""Corrected twin of deadlock_async_bug.py: both tasks take sessions before users.

Same program, but ``rename`` takes sessions first too, so whichever task gets
sessions finishes and the other follows. The database call is made before the
locks are taken, so no lock is held across an await either.

The analyzer must report no deadlock-class finding and nothing at warning or
above.

Exit status 0.
"""
import asyncio
import sys

try:
    from recorder import name as label
except ImportError:
    def label(obj, _name): return obj

sessions = label(asyncio.Lock(), "sessions")  # mark: create-sessions
users = label(asyncio.Lock(), "users")  # mark: create-users


async def db_call() -> None:
    await asyncio.sleep(0.05)


async def login() -> None:
    await db_call()
    async with sessions:  # mark: login-sessions
        async with users:  # mark: login-users
            pass


async def rename() -> None:
    await db_call()
    async with sessions:  # mark: rename-sessions
        async with users:  # mark: rename-users
            pass


async def amain() -> int:
    tasks = [asyncio.create_task(login(), name="login"),
             asyncio.create_task(rename(), name="rename")]
    done, pending = await asyncio.wait(tasks, timeout=1.0)  # mark: main-wait
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if pending:
        print("unexpected: login and rename did not finish", file=sys.stderr)
        return 3
    print("done: login and rename both finished")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(amain()))
