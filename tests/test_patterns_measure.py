"""manycore.patterns.measure: the measuring functions work and report sane numbers (tiny counts).

These are not benchmarks (those live in benchmarks/patterns.py): nothing here
asserts how fast anything is.
"""

from __future__ import annotations

import multiprocessing

import pytest

from manycore.patterns import measure

# A hard per-test bound, well below the global one: a deadlock fails fast.
pytestmark = pytest.mark.timeout(90)


def test_ping_pong() -> None:
    r = measure.pipe_ping_pong(50, 16, warmup=5)
    assert r.round_trips == 50
    assert r.payload_bytes == 16
    assert r.seconds > 0
    assert r.latency_us > 0
    assert r.messages_per_s == pytest.approx(2 * r.round_trips_per_s)
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize("channel", measure.CHANNELS)
def test_queue_throughput_every_channel(channel: measure.Channel) -> None:
    r = measure.queue_throughput(channel, 200, 100)
    assert r.channel == channel
    assert r.messages == 200
    assert r.messages_per_s > 0
    assert r.megabytes_per_s == pytest.approx(r.messages_per_s * 100 / 1e6)
    assert multiprocessing.active_children() == []


def test_queue_throughput_under_spawn() -> None:
    r = measure.queue_throughput("multiprocessing.Pipe", 50, 8, ctx=multiprocessing.get_context("spawn"))
    assert r.start_method == "spawn"


def test_proxy_cost_rows() -> None:
    rows = measure.proxy_cost(20)
    assert [r.ops for r in rows] == [20] * len(rows)
    assert rows[0].operation.startswith("list.append")
    assert any("Manager" in r.operation for r in rows)
    assert all(r.ns_per_op > 0 for r in rows)


def test_measure_all_and_format() -> None:
    report = measure.measure_all(scale=0.002, repeat=2)
    text = report.format()
    for channel in measure.CHANNELS:
        assert channel in text
    assert "round trip" in text
    assert "Manager list.append" in text


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: measure.pipe_ping_pong(0), "round trips"),
        (lambda: measure.queue_throughput("carrier pigeon", 10), "channel"),  # type: ignore[arg-type]
        (lambda: measure.queue_throughput("queue.Queue", 10, -1), "payload_bytes"),
        (lambda: measure.proxy_cost(0), "ops"),
        (lambda: measure.measure_all(scale=0), "scale"),
        (lambda: measure.measure_all(repeat=0), "repeat"),
    ],
)
def test_validation(call: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()  # type: ignore[operator]
