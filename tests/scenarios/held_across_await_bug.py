"""An asyncio lock held across a slow await while other tasks want it.

Task ``refresh`` takes ``config`` and, still holding it, awaits a slow fetch
(0.3 s). Three ``reader-N`` tasks arrive 10 ms later and queue up on
``config`` for the whole fetch.

The analyzer must report:

* ``held-across-await`` (warning) on asyncio lock ``config`` (created line 24),
  taken by task ``refresh`` in ``refresh_config`` line 34, held across the await
  at line 35 for ~0.3 s while 3 tasks waited for it (in ``read_config`` line 41);
* ``long-hold`` (warning) on ``config``, acquiring site ``refresh_config`` line 34.

Nothing deadlock-class. Exit status 0.
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
    async with config_lock:  # mark: refresh-acquire
        fresh = await fetch_remote_config()  # mark: slow-await
        config.update(fresh)


async def read_config(i: int) -> str:
    await asyncio.sleep(0.01)  # arrive while refresh is fetching
    async with config_lock:  # mark: reader-acquire
        return config["mode"]


async def amain() -> int:
    refresh = asyncio.create_task(refresh_config(), name="refresh")
    readers = [asyncio.create_task(read_config(i), name=f"reader-{i}") for i in range(1, 4)]
    modes = await asyncio.wait_for(asyncio.gather(refresh, *readers), timeout=5)
    print(f"done: readers saw {modes[1:]}")
    return 0 if modes[1:] == ["new"] * 3 else 3


if __name__ == "__main__":
    sys.exit(asyncio.run(amain()))
