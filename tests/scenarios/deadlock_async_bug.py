"""A real asyncio deadlock on `sessions` and `users`, broken by cancellation.

Task ``login`` takes sessions and awaits a database call; meanwhile task
``rename`` takes users and awaits too; then each asks for the other's lock.
The event loop schedules this the same way in every run. ``main`` waits 1 s
for the two tasks, sees them stuck and cancels both.

The analyzer must report exactly one ``deadlock`` (critical; lasted ~1 s and
was ended by cancellation) on asyncio locks ``sessions`` (created line 27) and
``users`` (created line 28): task ``login`` holds sessions (taken in ``login``
line 36) and waits for users at line 38; task ``rename`` holds users (taken in
``rename`` line 43) and waits for sessions at line 45. Reported once, as
``deadlock`` (not also as ``potential-deadlock``; the cancelled acquires are
part of it, not ``acquire-timeout``s). ``held-across-await`` and ``long-hold``
on the two locks may be reported too.

Exit status 0 after printing "deadlock detected" (3 if it did not deadlock).
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
    async with sessions:  # mark: login-sessions
        await db_call()
        async with users:  # mark: login-users
            pass


async def rename() -> None:
    async with users:  # mark: rename-users
        await db_call()
        async with sessions:  # mark: rename-sessions
            pass


async def amain() -> int:
    tasks = [asyncio.create_task(login(), name="login"),
             asyncio.create_task(rename(), name="rename")]
    done, pending = await asyncio.wait(tasks, timeout=1.0)  # mark: main-wait
    for task in pending:
        task.cancel()  # mark: main-cancel
    await asyncio.gather(*tasks, return_exceptions=True)
    if len(pending) == 2:
        print("deadlock detected: login and rename are stuck; cancelled both")
        return 0
    print("unexpected: the tasks did not deadlock", file=sys.stderr)
    return 3


if __name__ == "__main__":
    sys.exit(asyncio.run(amain()))
