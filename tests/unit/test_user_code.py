"""What a locustfile did to its run (issue 22, items 2, 3): the shape found without running
it, who ended the test, the exceptions its users raised, and how they weigh in the verdict."""

from __future__ import annotations

from typing import Any

import pytest

from loadmgr.models import StopReason, Verdict
from loadmgr.models.shapes import MAX_STAGES, describe_shape, find_shape
from loadmgr.service.collection.user_code import (
    MAX_KEPT,
    MAX_MESSAGE,
    end_of_test,
    seen_shape,
    shape_in_answer,
    summarize,
)
from loadmgr.service.judging.verdicts import decide_verdict, recompute_verdict

STAGES = """
import locust
from locust import LoadTestShape

class Base(LoadTestShape):
    abstract = True

class Stages(locust.LoadTestShape):
    stages = [{"duration": 10, "users": 2, "spawn_rate": 1, "user_classes": None},
              {"duration": 30, "users": 10, "spawn_rate": 5}]

    def tick(self):
        return None
"""


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (STAGES, {"className": "Stages", "file": "f.py", "stages": [
            {"duration": 10, "users": 2, "spawn_rate": 1, "user_classes": None},
            {"duration": 30, "users": 10, "spawn_rate": 5}]}),
        ("from locust import LoadTestShape\nclass S(LoadTestShape):\n    def tick(self): pass\n",
         {"className": "S", "file": "f.py"}),
        # Stages that are not a literal: the class alone.
        ("class S(LoadTestShape):\n    stages = make()\n", {"className": "S", "file": "f.py"}),
        ("class S(LoadTestShape):\n    stages: list = [{'users': 1e999}]\n",
         {"className": "S", "file": "f.py", "stages": [{}]}),
        ("from locust import HttpUser\nclass U(HttpUser):\n    pass\n", None),
        ("class Base(LoadTestShape):\n    abstract = True\n", None),
        ("def broken(:\n", None),
    ],
)
def test_a_shape_is_found_without_running_the_file(
    source: str, expected: dict[str, Any] | None
) -> None:
    assert find_shape([("f.py", source)]) == expected


def test_stages_are_bounded() -> None:
    many = "class S(LoadTestShape):\n    stages = [" + "{'users': 1}," * 500 + "]\n"
    shape = find_shape([("f.py", many)])
    assert shape is not None and len(shape["stages"]) == MAX_STAGES


def test_a_shape_reads_in_one_line() -> None:
    assert describe_shape(find_shape([("f.py", STAGES)])) == (
        "Stages (2 stages, up to 10 users, 30s)"
    )
    assert describe_shape({"className": "Steps"}) == "Steps"
    assert describe_shape(None) is None and describe_shape({"stages": []}) is None


def test_locust_tells_the_shape_it_runs() -> None:
    answer = {"message": "Swarming started using shape class 'StepLoad'", "success": True}
    assert shape_in_answer(answer) == "StepLoad"
    assert shape_in_answer({"message": "Swarming started"}) is None
    assert shape_in_answer(None) is None
    assert seen_shape(None, "StepLoad") == {"className": "StepLoad", "detectedBy": "locust"}
    assert seen_shape({"className": "StepLoad"}, "StepLoad") is None
    assert seen_shape({"className": "A"}, None) is None


# Every way Locust can stop on its own, early or at the duration, with or without a shape.
@pytest.mark.parametrize(
    ("cause", "shape", "asked", "early", "reason", "noted"),
    [
        ("shape", True, False, True, StopReason.SHAPE, False),
        ("shape", True, False, False, StopReason.SHAPE, False),
        (None, True, False, True, StopReason.SHAPE, False),  # no plugin: the shape ended it
        ("locustfile", False, False, True, StopReason.LOCUSTFILE, False),
        ("locustfile", True, False, True, StopReason.LOCUSTFILE, False),
        ("run_time", False, False, False, StopReason.DURATION, False),
        (None, False, False, False, StopReason.DURATION, False),
        ("request", False, False, True, StopReason.USER, True),
        ("request", True, False, True, StopReason.USER, True),
        (None, False, False, True, StopReason.USER, True),
        ("request", False, True, True, StopReason.USER, True),
        ("shape", True, True, True, StopReason.USER, True),  # runs stop asked first
    ],
)
def test_who_ended_the_test(
    cause: str | None, shape: bool, asked: bool, early: bool, reason: StopReason, noted: bool
) -> None:
    got, note = end_of_test(cause, shape, asked, early)
    assert got == reason
    assert (note is not None) == noted


def test_exceptions_are_kept_bounded_the_most_frequent_first() -> None:
    rows = [
        {"count": n, "msg": f"boom {n}" + "x" * 2000, "nodes": "w1, w2",
         "traceback": f'  File "/srv/runs/R/locustfile.py", line {n}, in task_{n}\n'
                      f'    raise ValueError("boom")\n'}
        for n in range(1, 60)
    ]
    rows.append({"count": "many", "msg": "not a row"})
    items, total = summarize(rows)
    assert total == sum(range(1, 60))
    assert len(items) == MAX_KEPT and items[0]["count"] == 59
    assert items[0]["where"] == "locustfile.py:59 in task_59"  # the file's name only
    assert items[0]["type"] == "ValueError"
    assert len(items[0]["message"]) == MAX_MESSAGE
    key_error = summarize([{"count": 2, "msg": "'x'", "traceback": "  d['x']\n"}])[0][0]
    assert key_error["type"] is None and key_error["where"] is None


FIRST = {"type": "ValueError", "where": "locustfile.py:9 in on_start", "message": "no",
         "count": 3}


@pytest.mark.parametrize(
    ("stop", "status", "requests", "raised", "verdict", "first_kind"),
    [
        ("duration", "Finished", 100, 3, Verdict.FAILED, "exception"),
        ("shape", "Finished", 100, 3, Verdict.FAILED, "exception"),
        ("duration", "Finished", 0, 5, Verdict.ERROR, "exception"),  # users crashed
        ("duration", "Finished", 100, 0, None, None),
        ("user", "Finished", 100, 3, Verdict.ABORTED, "aborted"),  # the cause first
        ("lost", "Failed", 0, 3, Verdict.ERROR, "error"),
    ],
)
def test_user_code_that_raised_weighs_in_the_verdict(
    stop: str, status: str, requests: int, raised: int, verdict: Verdict | None,
    first_kind: str | None,
) -> None:
    decided, reasons = decide_verdict(
        status=status, stop_reason=stop, final_totals={"requests": requests, "failures": 0},
        user_errors=raised, first_user_error=FIRST if raised else None,
    )
    assert decided == verdict
    assert (reasons[0].kind.value if reasons else None) == first_kind
    kinds = [r.kind.value for r in reasons]
    assert ("exception" in kinds) == bool(raised)
    if raised:
        message = next(r.message for r in reasons if r.kind.value == "exception")
        assert f"raised {raised} exceptions" in message
        assert "ValueError at locustfile.py:9 in on_start: no" in message
    # db migrate decides the same from what the run stored.
    stored = {
        "status": status, "stopReason": stop, "finalStats": {"totals": {
            "requests": requests, "failures": 0}},
        "exceptionCount": raised, "exceptions": [FIRST] if raised else [],
        "verdictReasons": [r.model_dump(mode="json") for r in reasons],
    }
    assert recompute_verdict(stored)[0] == verdict


# Python 3.11+ prints a line of position markers under the failing expression (`^`, `~`,
# spaces): the raise it marks is the line above, whatever the markers look like.
@pytest.mark.parametrize(
    "markers",
    ["    ^^^^^^^^^^^^^^^^^^^^^^^", "    ~~~~~~^^^^^^^", "          ^^^^^", "\t~~^~~", ""],
)
def test_the_raised_type_is_read_above_pythons_position_markers(markers: str) -> None:
    traceback = (
        '  File "/srv/runs/R/locustfile.py", line 30, in walk\n'
        '    raise KeyError("token")  # twice per user\n'
        f"{markers}\n"
    )
    item = summarize([{"count": 8, "msg": "'token'", "traceback": traceback}])[0][0]
    assert item["type"] == "KeyError"
    assert item["where"] == "locustfile.py:30 in walk"
