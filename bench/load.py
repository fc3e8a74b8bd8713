"""Load generators: closed-loop clients bounded in time and count, and latency statistics."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

#: no run sends more than this many requests per client, whatever its duration
MAX_REQUESTS_PER_CLIENT = 200_000


def percentile(values: Sequence[float], share: float) -> float:
    """The ``share`` (0..1) percentile of ``values`` by nearest rank; NaN when there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class Measured:
    """Latencies (seconds) of the successful requests of one run, and its failures."""

    latencies: tuple[float, ...]
    errors: int
    seconds: float
    clients: int
    #: the first few distinct failures, to tell what went wrong
    error_samples: tuple[str, ...] = ()

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0

    def ms(self, share: float) -> float:
        return percentile(self.latencies, share) * 1000

    def summary(self) -> dict[str, Any]:
        return {"requests": self.count, "errors": self.errors, "seconds": round(self.seconds, 3),
                "clients": self.clients, "per_second": round(self.rate, 1), "p50_ms": round(self.ms(0.50), 2),
                "p95_ms": round(self.ms(0.95), 2), "p99_ms": round(self.ms(0.99), 2),
                "error_samples": list(self.error_samples)}


#: one request of client ``i``: returns when it succeeded, raises (e.g. :class:`Failed`) when it did not
Request = Callable[[int], Awaitable[object]]


class Failed(Exception):
    """A request that got an answer, but not the expected one."""


async def closed_loop(request: Request, *, clients: int, duration: float, warmup: float = 0.0,
                      max_requests: int = MAX_REQUESTS_PER_CLIENT, overtime: float = 60.0) -> Measured:
    """``clients`` tasks each sending one request after another: ``warmup`` seconds unmeasured, then
    ``duration`` seconds measured, at most ``max_requests`` each. Counted are the requests that complete
    after the warm-up; the rate is those completions over the time from the end of the warm-up to the last
    of them. A slow server still yields figures: until ``clients`` requests have completed (or ``overtime``
    more seconds have passed) the clients keep going past the deadline. A request that raises counts as an
    error."""
    latencies: list[float] = []
    errors = 0
    samples: dict[str, None] = {}
    measure_from = time.monotonic() + warmup
    deadline = measure_from + duration
    last = measure_from

    def done() -> bool:
        now = time.monotonic()
        return now >= deadline + overtime or (now >= deadline and len(latencies) + errors >= clients)

    async def client(i: int) -> None:
        nonlocal errors, last
        for _ in range(max_requests):
            if done():
                return
            t0 = time.monotonic()
            failure = None
            try:
                await request(i)
            except Exception as exc:  # a failed request is a figure of the run, not the end of it
                failure = f"{type(exc).__name__}: {exc}"[:300]
            t1 = time.monotonic()
            if t1 >= measure_from:
                last = max(last, t1)
                if failure is None:
                    latencies.append(t1 - t0)
                else:
                    errors += 1
                    if len(samples) < 3:
                        samples[failure] = None

    await asyncio.gather(*(client(i) for i in range(clients)))
    return Measured(latencies=tuple(latencies), errors=errors, seconds=max(1e-6, last - measure_from),
                    clients=clients, error_samples=tuple(samples))


async def paced(action: Callable[[int], Awaitable[None]], *, rate: float, duration: float,
                max_in_flight: int = 256) -> int:
    """Start ``action(n)`` ``rate`` times a second for ``duration`` seconds (open loop: a slow action does not
    slow the pace, up to ``max_in_flight`` at once); waits for them all; returns how many were started."""
    interval = 1.0 / rate
    start = time.monotonic()
    tasks: set[asyncio.Task[None]] = set()
    slots = asyncio.Semaphore(max_in_flight)
    n = 0

    async def run(k: int) -> None:
        try:
            await action(k)
        finally:
            slots.release()

    while (due := start + n * interval) < start + duration:
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        await slots.acquire()
        task = asyncio.create_task(run(n))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        n += 1
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
    return n
