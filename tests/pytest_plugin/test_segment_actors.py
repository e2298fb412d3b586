"""Recorder segments as actors, recorded for real (no pytest plugin in between):
what the plugin relies on in the analyzer."""
from __future__ import annotations

import threading

import recorder
from analyzer import analyze
from analyzer.pytest_plugin.trace import attribute_tests, read_test_windows


def take(outer, inner):
    with outer:
        with inner:
            pass


def record_three_tests(out):
    """test_one and test_two take a then b, test_three b then a; all in this thread.
    test_three also starts a thread that takes a then b."""
    recorder.start(out)
    try:
        a = recorder.name(threading.Lock(), "a")
        b = recorder.name(threading.Lock(), "b")
        with recorder.segment("t.py::test_one"):
            take(a, b)
        with recorder.segment("t.py::test_two"):
            take(a, b)
            take(a, b)
        with recorder.segment("t.py::test_three"):
            take(b, a)
            worker = threading.Thread(target=take, args=(a, b), name="worker")
            worker.start()
            worker.join(10)
    finally:
        files = recorder.stop()
    return files


def test_every_actor_of_each_edge_is_listed_and_attributed_to_its_test(tmp_path):
    files = record_three_tests(tmp_path / "traces")
    doc = analyze(files, actors="segment",
                  on_result=lambda doc, con: attribute_tests(doc, read_test_windows(con)))
    [finding] = [f for f in doc["findings"] if f["kind"] == "potential-deadlock"]
    by_request = {s["requests"]["name"]: s for s in finding["steps"]}
    a_then_b, b_then_a = by_request["b"], by_request["a"]
    assert [(x["name"], x["kind"], x["count"]) for x in a_then_b["actors"]] == [
        ("t.py::test_one", "segment", 1), ("t.py::test_two", "segment", 2),
        ("worker", "thread", 1)]
    assert [x["name"] for x in b_then_a["actors"]] == ["t.py::test_three"]

    assert a_then_b["tests"] == ["t.py::test_one", "t.py::test_two", "t.py::test_three"]
    assert b_then_a["tests"] == ["t.py::test_three"]
    assert finding["tests"] == ["t.py::test_one", "t.py::test_two", "t.py::test_three"]


def test_without_segment_actors_the_same_trace_is_only_a_guarded_cycle(tmp_path):
    files = record_three_tests(tmp_path / "traces")
    doc = analyze(files)
    # per thread: the main thread took b -> a before it started the worker (a -> b),
    # so start/join order rules the cycle out; the tests as actors are what find it
    assert [f["kind"] for f in doc["findings"] if f["kind"].endswith(("deadlock", "cycle"))] == [
        "guarded-cycle"]
    [cycle] = [f for f in doc["findings"] if f["kind"] == "guarded-cycle"]
    assert cycle["details"]["reason"] == "ordered"
