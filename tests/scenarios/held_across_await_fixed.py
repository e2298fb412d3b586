"""Corrected twin of held_across_await_bug.py: await first, then lock briefly.

``refresh_config`` fetches with no lock held and takes ``config`` only to
update the dict (no await inside the critical section). The readers never wait
long and the lock is never held across an await.

The analyzer must report no ``held-across-await``, no ``long-hold`` and no
deadlock-class finding.

Exit status 0.
"""
import asyncio
import sys

try:
    from recorder import name as label
except ImportError:
    def label(obj, _name): return obj

config_lock = label(asyncio.Lock(), "config")  # mark: create-config
config: dict[str, str] = {"mode": "old"}


async def fetch_remote_config() -> dict[str, str]:
    await asyncio.sleep(0.3)  # a slow HTTP call
    return {"mode": "new"}


async def refresh_config() -> None:
    fresh = await fetch_remote_config()  # mark: slow-await
    async with config_lock:  # mark: refresh-acquire
        config.update(fresh)


async def read_config(i: int) -> str:
    await asyncio.sleep(0.01)
    async with config_lock:  # mark: reader-acquire
        return config["mode"]


async def amain() -> int:
    refresh = asyncio.create_task(refresh_config(), name="refresh")
    readers = [asyncio.create_task(read_config(i), name=f"reader-{i}") for i in range(1, 4)]
    modes = await asyncio.wait_for(asyncio.gather(refresh, *readers), timeout=5)
    print(f"done: readers saw {modes[1:]}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(amain()))
