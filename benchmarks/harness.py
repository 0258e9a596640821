"""Measuring helpers: timers, SQL and Redis round-trip counters, summaries."""
from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import connection, transaction
from redis.connection import AbstractConnection

_round_trips = threading.local()


def _counting_send(original):
    def send_packed_command(self, command, check_health=True):
        counter = getattr(_round_trips, "value", None)
        if counter is not None:
            _round_trips.value = counter + 1
        return original(self, command, check_health)

    return send_packed_command


# One send_packed_command is one request on the wire: a command, a pipeline or a script.
AbstractConnection.send_packed_command = _counting_send(AbstractConnection.send_packed_command)


@dataclass
class Cost:
    sql: float  # statements, transaction control (BEGIN, SAVEPOINT...) left out
    redis: float
    transactions: float = 0.0  # transactions that wrote: each is an fsync on SQLite


_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


def _in_this_transaction() -> None:
    """A marker on_commit callback: the current transaction's write is counted."""


def cost(call: Callable[[], object], repeat: int = 1) -> Cost:
    """Average SQL statements, write transactions and Redis round trips of `call`
    (measured apart from timing). A write outside `atomic()` is a transaction of its
    own; inside, the outermost block's first write counts it."""
    queries, writes = [0], [0]

    def count_query(execute, sql, params, many, context):
        head = sql.lstrip()[:9].upper()
        if not head.startswith(_CONTROL):
            queries[0] += 1
            if not head.startswith("SELECT"):
                if not connection.in_atomic_block:
                    writes[0] += 1
                elif not any(entry[1] is _in_this_transaction
                             for entry in connection.run_on_commit):
                    writes[0] += 1
                    transaction.on_commit(_in_this_transaction)
        return execute(sql, params, many, context)

    _round_trips.value = 0
    try:
        with connection.execute_wrapper(count_query):
            for _ in range(repeat):
                call()
        return Cost(queries[0] / repeat, _round_trips.value / repeat, writes[0] / repeat)
    finally:
        _round_trips.value = None


@contextmanager
def counting_queries(total: list[int]):
    """Add this thread's SQL queries to total[0] (for the threaded figures)."""
    def count_query(execute, sql, params, many, context):
        total[0] += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count_query):
        yield


def latencies(call: Callable[[], object], n: int, warmup: int = 20) -> list[float]:
    """Per-call wall time in microseconds."""
    for _ in range(warmup):
        call()
    out = []
    clock = time.perf_counter_ns
    for _ in range(n):
        start = clock()
        call()
        out.append((clock() - start) / 1000)
    return out


@dataclass
class Summary:
    mean: float  # us
    p50: float
    p99: float

    @property
    def per_second(self) -> float:
        return 1e6 / self.mean


def summarise(samples: list[float]) -> Summary:
    ordered = sorted(samples)
    return Summary(statistics.fmean(ordered), ordered[len(ordered) // 2],
                   ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))])


def median_summary(runs: list[Summary]) -> Summary:
    """The median of repeated runs, figure by figure (robust to a noisy neighbour)."""
    return Summary(statistics.median(r.mean for r in runs),
                   statistics.median(r.p50 for r in runs),
                   statistics.median(r.p99 for r in runs))
