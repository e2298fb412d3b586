"""Thread-pool jobs are actors of their own: an inversion between two job functions is a
potential deadlock even when one worker thread ran both; reading one job's result before
submitting the other orders them (a guarded cycle)."""
from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import recorder

from .conftest import kinds, line_of

TIMEOUT = 5


def bank():
    accounts = recorder.name(threading.Lock(), "accounts")
    ledger = recorder.name(threading.Lock(), "ledger")

    def deposit():
        with accounts:
            with ledger:
                pass

    def audit():
        with ledger:
            with accounts:
                pass

    return deposit, audit


def job_names(finding: dict) -> list[str]:
    assert all(s["actor"]["kind"] == "job" for s in finding["steps"])
    return sorted(s["actor"]["name"].rsplit(".", 1)[-1] for s in finding["steps"])


def test_two_jobs_on_one_worker_are_a_potential_deadlock(record):
    with record() as rec:
        deposit, audit = bank()

        def submit_both():
            with ThreadPoolExecutor(1) as pool:  # one worker runs both jobs
                first = pool.submit(deposit)  # submit: deposit
                second = pool.submit(audit)
                first.result(TIMEOUT)
                second.result(TIMEOUT)

        submit_both()
    doc = rec.analyze()
    [f] = kinds(doc, "potential-deadlock")
    assert sorted(lk["name"] for lk in f["locks"]) == ["accounts", "ledger"]
    assert job_names(f) == ["audit", "deposit"]
    assert not kinds(doc, "guarded-cycle")
    trace = [line for path in rec.files for line in open(path)]
    assert sum('"kind":"job"' in line for line in trace) == 2
    # the submission is recorded at the user's submit line
    import json
    records = [json.loads(line) for line in trace]
    sites = {r["id"]: f'{r["file"]}:{r["line"]}' for r in records if r["k"] == "site"}
    submits = [r for r in records if r.get("op") == "signal" and r.get("sig") == "submit"]
    assert len(submits) == 2
    assert line_of(submit_both, "# submit: deposit").split(":")[-1] == sites[submits[0]["site"]].split(":")[-1]


def test_a_job_whose_result_is_read_before_the_next_is_submitted_is_guarded(record):
    with record() as rec:
        deposit, audit = bank()
        with ThreadPoolExecutor(2) as pool:
            pool.submit(deposit).result(TIMEOUT)
            pool.submit(audit).result(TIMEOUT)
    doc = rec.analyze()
    assert not kinds(doc, "potential-deadlock")
    [g] = kinds(doc, "guarded-cycle")
    assert g["details"]["reason"] == "ordered"
    assert g["details"]["explanation"].startswith("ordered by the result of job ")
    assert job_names(g) == ["audit", "deposit"]


def test_asyncio_to_thread_jobs_are_actors_named_after_their_function(record):
    with record() as rec:
        deposit, audit = bank()

        async def main():
            await asyncio.wait_for(asyncio.gather(asyncio.to_thread(deposit), asyncio.to_thread(audit)),
                                   TIMEOUT)

        asyncio.run(main())
    [f] = kinds(rec.analyze(), "potential-deadlock")
    assert job_names(f) == ["audit", "deposit"]


def test_with_actors_thread_one_worker_is_one_actor(record):
    with record() as rec:
        deposit, audit = bank()
        with ThreadPoolExecutor(1) as pool:
            first, second = pool.submit(deposit), pool.submit(audit)
            first.result(TIMEOUT)
            second.result(TIMEOUT)
    doc = rec.analyze(actors="thread")
    assert not kinds(doc, "potential-deadlock")
    [g] = kinds(doc, "guarded-cycle")
    assert g["details"]["reason"] == "single-actor"
