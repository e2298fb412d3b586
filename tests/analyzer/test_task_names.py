"""Tasks the program did not name are shown by their coroutine (`Shop.refresh()`,
`read()#1`), recorded from a real event loop; a name the program gave wins."""
from __future__ import annotations

import asyncio

import recorder

from .conftest import kinds

TIMEOUT = 5


class Shop:
    def __init__(self) -> None:
        self.config = recorder.name(asyncio.Lock(), "config")

    async def refresh(self) -> None:
        async with self.config:
            await asyncio.sleep(0.1)


async def read(shop: Shop) -> None:
    await asyncio.sleep(0.01)
    async with shop.config:
        pass


def _run(names: tuple) -> None:
    async def main():
        shop = Shop()
        tasks = [asyncio.create_task(shop.refresh()),
                 *[asyncio.create_task(read(shop), **({"name": n} if n else {})) for n in names]]
        await asyncio.wait_for(asyncio.gather(*tasks), TIMEOUT)

    asyncio.run(main())


def test_unnamed_tasks_are_named_by_their_coroutine_and_told_apart(record):
    with record() as rec:
        _run((None, None))
    [f] = kinds(rec.analyze(), "held-across-await")
    d = f["details"]
    assert d["holder"]["name"] == "Shop.refresh()"
    assert sorted(w["actor"]["name"] for w in d["waiting"]) == ["read()#1", "read()#2"]
    assert "Task 'Shop.refresh()' held 'config'" in f["message"]
    assert {t["name"] for t in f["threads"]} == {"Shop.refresh()", "read()#1", "read()#2"}


def test_a_name_the_program_gave_wins_and_a_lone_coroutine_is_not_numbered(record):
    with record() as rec:
        _run(("reader", None))
    [f] = kinds(rec.analyze(), "held-across-await")
    assert sorted(w["actor"]["name"] for w in f["details"]["waiting"]) == ["read()", "reader"]
