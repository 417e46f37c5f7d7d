"""What communication costs: Pipe ping-pong, queue throughput, Manager proxy calls.

Every function runs one measurement on this machine and returns a frozen
result; ``measure_all`` runs them all and ``PatternsReport.format()`` prints
them (``benchmarks/patterns.py``, later ``manycore bench``).  Process start-up
is never timed: children signal that they are ready and wait for a "go"
before the clock starts.  Times are wall-clock (``time.perf_counter``) of one
run, so expect noise of a few percent; compare orders of magnitude, not digits.

``pipe_ping_pong``
    A parent and a child bounce one message back and forth over a duplex
    ``multiprocessing.Pipe`` (``send``/``recv``, so pickling is included).
    ``latency_us`` is the mean round trip.
``queue_throughput(channel)``
    One producer streams ``messages`` payloads to one consumer, which times
    from "go" until the last one arrives.  ``channel`` is one of
    ``CHANNELS``: ``queue.Queue`` (between two threads: no copy, no pickling,
    the GIL hand-off is the cost), ``multiprocessing.Queue`` (pickling, a
    feeder thread, a pipe and a lock), ``multiprocessing.SimpleQueue``
    (pickling, a pipe and a lock, no feeder thread) and ``multiprocessing.Pipe``
    (pickling and a pipe).
``proxy_cost``
    Cost per operation of a plain list in this process, of a shared-memory
    ``multiprocessing.Value`` updated under its lock, and of ``Manager`` list
    and dict proxies (each proxy call is a round trip to the manager process).
"""

from __future__ import annotations

import functools
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.context import BaseContext
from typing import Any, Literal, TypeVar

from ._mp import context, new_process
from .shared import SharedCounter

__all__ = [
    "CHANNELS",
    "Channel",
    "OpCost",
    "PatternsReport",
    "PingPongResult",
    "ThroughputResult",
    "measure_all",
    "pipe_ping_pong",
    "proxy_cost",
    "queue_throughput",
]

Channel = Literal[
    "queue.Queue", "multiprocessing.Queue", "multiprocessing.SimpleQueue", "multiprocessing.Pipe"
]
CHANNELS: tuple[Channel, ...] = (
    "queue.Queue",
    "multiprocessing.Queue",
    "multiprocessing.SimpleQueue",
    "multiprocessing.Pipe",
)

_JOIN_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class PingPongResult:
    """``round_trips`` round trips of a ``payload_bytes`` message over a Pipe took ``seconds``."""

    round_trips: int
    payload_bytes: int
    seconds: float
    start_method: str

    @property
    def latency_us(self) -> float:
        """Mean round-trip time in microseconds."""
        return self.seconds / self.round_trips * 1e6

    @property
    def round_trips_per_s(self) -> float:
        return self.round_trips / self.seconds

    @property
    def messages_per_s(self) -> float:
        """Messages (two per round trip) per second."""
        return 2 * self.round_trips / self.seconds


@dataclass(frozen=True)
class ThroughputResult:
    """``messages`` payloads of ``payload_bytes`` crossed ``channel`` in ``seconds``."""

    channel: str
    messages: int
    payload_bytes: int
    seconds: float
    start_method: str

    @property
    def messages_per_s(self) -> float:
        return self.messages / self.seconds

    @property
    def us_per_message(self) -> float:
        return self.seconds / self.messages * 1e6

    @property
    def megabytes_per_s(self) -> float:
        """Payload bytes per second, in MB (10**6 bytes)."""
        return self.messages * self.payload_bytes / self.seconds / 1e6


@dataclass(frozen=True)
class OpCost:
    """``ops`` repetitions of ``operation`` took ``seconds``."""

    operation: str
    ops: int
    seconds: float

    @property
    def ns_per_op(self) -> float:
        return self.seconds / self.ops * 1e9


@dataclass(frozen=True)
class PatternsReport:
    """All measurements of one ``measure_all`` run."""

    ping_pong: PingPongResult
    throughput: tuple[ThroughputResult, ...]
    proxy_costs: tuple[OpCost, ...]

    def format(self) -> str:
        """A plain-text report."""
        pp = self.ping_pong
        lines = [
            f"Pipe ping-pong ({pp.start_method}, {pp.payload_bytes}-byte message, {pp.round_trips} round trips)",
            f"  round trip {pp.latency_us:9.1f} us   {pp.round_trips_per_s:12,.0f} round trips/s"
            f"   {pp.messages_per_s:12,.0f} messages/s",
            "",
        ]
        if self.throughput:
            t0 = self.throughput[0]
            lines.append(f"One-way throughput, 1 producer -> 1 consumer ({t0.payload_bytes}-byte payloads)")
            lines.append(f"  {'channel':<30} {'messages/s':>12} {'us/message':>11} {'MB/s':>8}")
            for t in self.throughput:
                lines.append(
                    f"  {t.channel:<30} {t.messages_per_s:12,.0f} {t.us_per_message:11.2f} {t.megabytes_per_s:8.1f}"
                )
            lines.append("")
        if self.proxy_costs:
            base = self.proxy_costs[0].ns_per_op
            lines.append("Cost per operation: local objects vs shared memory vs Manager proxies")
            lines.append(f"  {'operation':<56} {'ns/op':>10} {'x first':>9}")
            for c in self.proxy_costs:
                lines.append(f"  {c.operation:<56} {c.ns_per_op:10,.0f} {c.ns_per_op / base:9.1f}")
        return "\n".join(lines)


def _join(procs: Sequence[Any]) -> None:
    for p in procs:
        p.join(_JOIN_TIMEOUT_S)
        if p.is_alive():
            p.terminate()
            p.join()
            raise RuntimeError(f"measurement child {p.name} did not finish within {_JOIN_TIMEOUT_S} s")
        if p.exitcode != 0:
            raise RuntimeError(f"measurement child {p.name} failed with exit code {p.exitcode}")


def _check_counts(n: int, payload_bytes: int) -> None:
    if n < 1:
        raise ValueError(f"the number of messages / round trips must be >= 1, got {n}")
    if payload_bytes < 0:
        raise ValueError(f"payload_bytes must be >= 0, got {payload_bytes}")


# -- ping-pong ---------------------------------------------------------------------


def _echo(conn: Any, ready: Any) -> None:
    ready.set()
    while True:
        msg = conn.recv()
        if msg is None:
            break
        conn.send(msg)
    conn.close()


def pipe_ping_pong(
    round_trips: int = 20_000, payload_bytes: int = 64, *, ctx: BaseContext | None = None, warmup: int = 100
) -> PingPongResult:
    """Bounce a ``payload_bytes`` bytes object over a duplex Pipe ``round_trips`` times (after ``warmup``)."""
    _check_counts(round_trips, payload_bytes)
    c = context(ctx)
    mine, theirs = c.Pipe(duplex=True)
    ready = c.Event()
    child = new_process(c, _echo, (theirs, ready), "manycore-measure-echo")
    child.start()
    theirs.close()
    try:
        ready.wait(_JOIN_TIMEOUT_S)
        payload = b"x" * payload_bytes
        for _ in range(warmup):
            mine.send(payload)
            mine.recv()
        t0 = time.perf_counter()
        for _ in range(round_trips):
            mine.send(payload)
            mine.recv()
        seconds = time.perf_counter() - t0
        mine.send(None)
    finally:
        _join([child])
        mine.close()
    return PingPongResult(round_trips, payload_bytes, seconds, c.get_start_method())


# -- one-way throughput ----------------------------------------------------------------


def _produce(send: Callable[[bytes | None], object], ready: Any, go: Any, n: int, payload_bytes: int) -> None:
    payload = b"x" * payload_bytes
    ready.set()
    go.wait()
    for _ in range(n):
        send(payload)
    send(None)


def _produce_queue(q: Any, ready: Any, go: Any, n: int, payload_bytes: int) -> None:
    _produce(q.put, ready, go, n, payload_bytes)


def _produce_pipe(conn: Any, ready: Any, go: Any, n: int, payload_bytes: int) -> None:
    _produce(conn.send, ready, go, n, payload_bytes)
    conn.close()


def _consume(get: Callable[[], Any], go: Any) -> float:
    go.set()
    t0 = time.perf_counter()
    while get() is not None:
        pass
    return time.perf_counter() - t0


def queue_throughput(
    channel: Channel, messages: int = 50_000, payload_bytes: int = 64, *, ctx: BaseContext | None = None
) -> ThroughputResult:
    """Stream ``messages`` payloads from one producer to one consumer over ``channel`` (one of ``CHANNELS``)."""
    _check_counts(messages, payload_bytes)
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {CHANNELS}, got {channel!r}")
    c = context(ctx)
    method = c.get_start_method()
    if channel == "queue.Queue":
        q: queue.Queue[bytes | None] = queue.Queue()
        ready_t, go_t = threading.Event(), threading.Event()
        producer = threading.Thread(
            target=_produce_queue,
            args=(q, ready_t, go_t, messages, payload_bytes),
            name="manycore-measure-producer",
        )
        producer.start()
        try:
            ready_t.wait(_JOIN_TIMEOUT_S)
            seconds = _consume(q.get, go_t)
        finally:
            go_t.set()
            producer.join(_JOIN_TIMEOUT_S)
        return ThroughputResult(channel, messages, payload_bytes, seconds, "threads")

    ready, go = c.Event(), c.Event()
    mine: Any  # the consumer's end; theirs: the producer's (the same queue, or the other end of the pipe)
    theirs: Any
    produce: Callable[[Any, Any, Any, int, int], None]
    if channel == "multiprocessing.Pipe":
        mine, theirs = c.Pipe(duplex=False)
        produce, get = _produce_pipe, mine.recv
    else:
        mine = theirs = c.Queue() if channel == "multiprocessing.Queue" else c.SimpleQueue()
        produce, get = _produce_queue, mine.get
    child = new_process(c, produce, (theirs, ready, go, messages, payload_bytes), "manycore-measure-producer")
    child.start()
    if theirs is not mine:
        theirs.close()
    try:
        ready.wait(_JOIN_TIMEOUT_S)
        seconds = _consume(get, go)
    finally:
        go.set()
        _join([child])
        mine.close()
    return ThroughputResult(channel, messages, payload_bytes, seconds, method)


# -- proxy cost --------------------------------------------------------------------


def _time_ops(operation: str, ops: int, op: Callable[[int], object]) -> OpCost:
    t0 = time.perf_counter()
    for i in range(ops):
        op(i)
    return OpCost(operation, ops, time.perf_counter() - t0)


def proxy_cost(ops: int = 2_000, *, ctx: BaseContext | None = None) -> tuple[OpCost, ...]:
    """Time ``ops`` operations on local, shared-memory and Manager-proxied objects (first = baseline)."""
    if ops < 1:
        raise ValueError(f"ops must be >= 1, got {ops}")
    c = context(ctx)
    local: list[int] = []
    value: Any = c.Value("q", 0)
    counter = SharedCounter(0, ctx=c)

    def value_add(_: int) -> None:
        with value.get_lock():
            value.value += 1

    results = [
        _time_ops("list.append (plain list, this process)", ops, local.append),
        _time_ops("Value += 1 under get_lock() (shared memory)", ops, value_add),
        _time_ops("SharedCounter.increment() (shared memory)", ops, lambda _: counter.increment()),
    ]
    with c.Manager() as manager:
        plist = manager.list()
        pdict = manager.dict()
        pvalue = manager.Value("q", 0)
        plock = manager.Lock()

        def dict_set(i: int) -> None:
            pdict[i % 64] = i

        def value_add_proxy(_: int) -> None:
            pvalue.value += 1  # two round trips (get, set): racy without a lock

        def dict_add_locked(_: int) -> None:
            with plock:  # two more round trips, and now correct across processes
                pdict["n"] = pdict.get("n", 0) + 1

        plist.append(0)  # connect the proxies before timing
        pdict[0] = 0
        results += [
            _time_ops("Manager list.append (proxy, 1 round trip)", ops, plist.append),
            _time_ops("Manager dict[k] = v (proxy, 1 round trip)", ops, dict_set),
            _time_ops("Manager Value.value += 1 (proxy, 2 round trips)", ops, value_add_proxy),
            _time_ops("Manager dict[k] += 1 under Manager Lock (4 round trips)", ops, dict_add_locked),
        ]
    return tuple(results)


R = TypeVar("R", PingPongResult, ThroughputResult, tuple[OpCost, ...])


def _best(repeat: int, run: Callable[[], R]) -> R:
    """The fastest of ``repeat`` runs (noise only ever adds time)."""

    def seconds(r: R) -> float:
        return sum(c.seconds for c in r) if isinstance(r, tuple) else r.seconds

    return min((run() for _ in range(repeat)), key=seconds)


def measure_all(
    *, scale: float = 1.0, payload_bytes: int = 64, repeat: int = 1, ctx: BaseContext | None = None
) -> PatternsReport:
    """Run every measurement, keeping the fastest of ``repeat`` runs of each.

    ``scale`` multiplies the default counts (20,000 round trips, 50,000
    messages per channel, 2,000 operations per proxy-cost row).
    """
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")

    def n(default: int) -> int:
        return max(1, int(default * scale))

    return PatternsReport(
        ping_pong=_best(repeat, lambda: pipe_ping_pong(n(20_000), payload_bytes, ctx=ctx)),
        throughput=tuple(
            _best(repeat, functools.partial(queue_throughput, ch, n(50_000), payload_bytes, ctx=ctx))
            for ch in CHANNELS
        ),
        proxy_costs=_best(repeat, lambda: proxy_cost(n(2_000), ctx=ctx)),
    )
