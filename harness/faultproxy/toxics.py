"""Toxic types: their attributes and what each does to the data of one link.

A *toxic* is configured through the API (:class:`Toxic`). On every live connection, each
direction (link) runs its own :class:`Behaviour` instance for it, so state such as the
``limit_data`` byte counter is per connection and direction, as in Toxiproxy.

Behaviours are driven by the link's pump (see ``link.py``): ``on_data`` receives a chunk and
hands zero or more chunks to ``emit``, which runs the rest of the chain before returning.
Waiting is done through the :class:`StageContext` so the link can cut a wait short when the
chain changes ("interrupts", after which held data is forwarded at once).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from harness.faultproxy.jsonio import go_number

Direction = Literal["upstream", "downstream"]
DIRECTIONS: tuple[Direction, Direction] = ("upstream", "downstream")


@dataclass
class Chunk:
    """Bytes read from a socket, stamped with the loop time they arrived at the proxy."""

    data: bytes
    stamp: float


Emit = Callable[[Chunk], Awaitable[None]]
EmitEof = Callable[[], Awaitable[None]]


class StageContext(Protocol):
    """What a behaviour may ask of the link it runs on."""

    rng: random.Random

    def now(self) -> float: ...

    async def sleep(self, seconds: float, *, interruptible: bool = True) -> bool:
        """Wait; return False if the chain changed and the wait was cut short."""

    async def wait_interrupt(self) -> None:
        """Wait until the chain changes."""

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Cancellable: ...

    def close_output(self) -> None:
        """End this stage's output: EOF travels through the later stages, input stops."""

    def reset_connection(self) -> None:
        """Close both sockets of the connection with a TCP RST."""


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Behaviour:
    """A toxic running on one link. The base class passes everything through (``noop``)."""

    def __init__(self, toxic: Toxic, ctx: StageContext) -> None:
        self.toxic = toxic
        self.ctx = ctx

    def attr(self, name: str) -> int:
        return self.toxic.attributes.get(name, 0)

    def start(self) -> None:
        """The toxic (re)starts on this link after winning its toxicity roll."""

    def stop(self) -> None:
        """The toxic stops running on this link (re-roll lost, removal or link closed)."""

    def removed(self) -> None:
        """The active toxic is being deleted from this link (after :meth:`stop`)."""

    async def on_data(self, chunk: Chunk, emit: Emit) -> None:
        await emit(chunk)

    async def on_eof(self, emit_eof: EmitEof) -> None:
        await emit_eof()


class Latency(Behaviour):
    async def on_data(self, chunk: Chunk, emit: Emit) -> None:
        delay = self.attr("latency")
        jitter = self.attr("jitter")
        if jitter > 0:
            delay += self.ctx.rng.randrange(2 * jitter) - jitter
        # Measured from the chunk's arrival, so back-to-back chunks are not delayed
        # cumulatively; advancing the stamp makes a second latency toxic add up.
        wait = delay / 1000.0 - (self.ctx.now() - chunk.stamp)
        if wait > 0 and await self.ctx.sleep(wait):
            chunk.stamp += wait
        await emit(chunk)


class Bandwidth(Behaviour):
    _PIECE_INTERVAL = 0.1
    _debt = 0.0

    def start(self) -> None:
        # Oversleep is carried as negative debt so the long-run rate stays exact; a
        # restart forgets it, as Toxiproxy's restarted goroutine does.
        self._debt = 0.0

    async def on_data(self, chunk: Chunk, emit: Emit) -> None:
        rate = self.attr("rate")
        if rate <= 0:
            # Toxiproxy never lets data through at rate 0 (it emits empty pieces forever);
            # hold the chunk until the toxic is changed instead of spinning.
            await self.ctx.wait_interrupt()
            await emit(chunk)
            return
        self._debt += len(chunk.data) / (rate * 1000.0)
        piece_size = rate * 100
        data = chunk.data
        while len(data) > piece_size:
            if not await self.ctx.sleep(self._PIECE_INTERVAL):
                await emit(Chunk(data, chunk.stamp))
                return
            await emit(Chunk(data[:piece_size], chunk.stamp))
            data = data[piece_size:]
            self._debt -= self._PIECE_INTERVAL
        started = self.ctx.now()
        if not await self.ctx.sleep(self._debt):
            await emit(Chunk(data, chunk.stamp))
            return
        self._debt -= self.ctx.now() - started
        await emit(Chunk(data, chunk.stamp))


class SlowClose(Behaviour):
    async def on_eof(self, emit_eof: EmitEof) -> None:
        await self.ctx.sleep(self.attr("delay") / 1000.0)
        await emit_eof()


class Timeout(Behaviour):
    """Black hole: drop everything; close the link after ``timeout`` ms without data."""

    _timer: Cancellable | None = None

    def start(self) -> None:
        self._arm()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def removed(self) -> None:
        # Data was dropped while the toxic ran, so continuing the stream would hand the
        # peer a corrupt byte sequence: Toxiproxy closes the connection instead.
        self.ctx.close_output()

    def _arm(self) -> None:
        self.stop()
        timeout = self.attr("timeout")
        if timeout > 0:
            self._timer = self.ctx.call_later(timeout / 1000.0, self._expire)

    def _expire(self) -> None:
        self._timer = None
        self.ctx.close_output()

    async def on_data(self, chunk: Chunk, emit: Emit) -> None:
        # Each arriving chunk restarts the countdown, so a chatty peer postpones the close.
        if self._timer is not None:
            self._arm()


class ResetPeer(Behaviour):
    _fired = False

    async def on_data(self, chunk: Chunk, emit: Emit) -> None:
        await self._reset()

    async def on_eof(self, emit_eof: EmitEof) -> None:
        await self._reset()

    async def _reset(self) -> None:
        if self._fired:
            return
        self._fired = True
        # Like Toxiproxy, the wait is not cut short by API changes: once triggered, the
        # reset happens.
        await self.ctx.sleep(self.attr("timeout") / 1000.0, interruptible=False)
        self.ctx.reset_connection()


class Slicer(Behaviour):
    async def on_data(self, chunk: Chunk, emit: Emit) -> None:
        data = chunk.data
        bounds = self._boundaries(len(data))
        delay = self.attr("delay") / 1_000_000.0
        for start, end in itertools.pairwise(bounds):
            await emit(Chunk(data[start:end], chunk.stamp))
            if delay > 0 and not await self.ctx.sleep(delay):
                if end < len(data):
                    await emit(Chunk(data[end:], chunk.stamp))
                return

    def _boundaries(self, length: int) -> list[int]:
        """Cut ``[0, length)`` by recursive halving with a random offset of +-variation.

        Unlike Toxiproxy, an ``average_size`` below 1 is treated as 1 and cut points are
        kept inside the piece, so odd settings cannot hang or crash the server.
        """
        average = max(1, self.attr("average_size"))
        variation = max(0, self.attr("size_variation"))
        cuts = [0]
        stack = [(0, length)]
        while stack:
            start, end = stack.pop()
            if (end - start) - average <= variation or end - start < 2:
                cuts.append(end)
                continue
            mid = start + (end - start) // 2
            if variation > 0:
                mid += self.ctx.rng.randrange(2 * variation) - variation
            mid = min(max(mid, start + 1), end - 1)
            # Right half first so the left half is popped (and emitted) first.
            stack.append((mid, end))
            stack.append((start, mid))
        return cuts


class LimitData(Behaviour):
    def __init__(self, toxic: Toxic, ctx: StageContext) -> None:
        super().__init__(toxic, ctx)
        # Kept across restarts and updates: the limit is per connection, not per run.
        self.transmitted = 0

    async def on_data(self, chunk: Chunk, emit: Emit) -> None:
        remaining = max(0, self.attr("bytes") - self.transmitted)
        data = chunk.data[:remaining] if remaining < len(chunk.data) else chunk.data
        if data:
            self.transmitted += len(data)
            await emit(Chunk(data, chunk.stamp))
        if self.attr("bytes") - self.transmitted <= 0:
            self.ctx.close_output()


@dataclass(frozen=True)
class ToxicType:
    """A registered toxic type: its API name, Go struct name and integer attributes."""

    name: str
    go_struct: str
    attributes: tuple[str, ...]
    behaviour: type[Behaviour]
    go_int: str = "int64"


TOXIC_TYPES: dict[str, ToxicType] = {
    t.name: t
    for t in (
        ToxicType("latency", "LatencyToxic", ("latency", "jitter"), Latency),
        ToxicType("bandwidth", "BandwidthToxic", ("rate",), Bandwidth),
        ToxicType("slow_close", "SlowCloseToxic", ("delay",), SlowClose),
        ToxicType("timeout", "TimeoutToxic", ("timeout",), Timeout),
        ToxicType("reset_peer", "ResetToxic", ("timeout",), ResetPeer),
        ToxicType(
            "slicer", "SlicerToxic", ("average_size", "size_variation", "delay"), Slicer, "int"
        ),
        ToxicType("limit_data", "LimitDataToxic", ("bytes",), LimitData),
        ToxicType("noop", "NoopToxic", (), Behaviour),
    )
}


@dataclass
class Toxic:
    """A toxic as configured through the API."""

    name: str
    type: ToxicType
    stream: str
    direction: Direction
    toxicity: float
    attributes: dict[str, int] = field(default_factory=dict)
    # Position in the proxy's creation order; chains are ordered by it (see link.py).
    seq: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            "attributes": {key: self.attributes.get(key, 0) for key in self.type.attributes},
            "name": self.name,
            "type": self.type.name,
            "stream": self.stream,
            "toxicity": go_number(self.toxicity),
        }
