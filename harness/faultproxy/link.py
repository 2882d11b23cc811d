"""One direction of one proxied connection, and the toxic chain its data runs through.

Fast path: while no toxic is active on the link, every chunk read from the source socket
is written straight to the destination transport from the protocol callback, with no
queue, task or timestamp involved. That keeps a clean proxy close to a direct connection.

Toxic path: chunks are stamped with their arrival time, queued, and a single pump task per
link runs each one through the active toxics in chain order. Each toxic's ``emit`` runs the
rest of the chain before returning, so one task serves the whole chain; toxics that wait
(latency, bandwidth, slicer) measure from the arrival stamp, which keeps back-to-back chunks
from being delayed cumulatively. When the chain is emptied again and the queue has drained,
the pump exits and the link returns to the fast path.

Chain changes follow Toxiproxy: adding a toxic restarts (re-rolls toxicity for, and
interrupts) the previous last one; updating restarts that toxic; removing interrupts it and
restarts its predecessor. An interrupted wait ends at once and the held chunk moves on.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Callable
from typing import Protocol

from harness.faultproxy.toxics import Cancellable, Chunk, Direction, Toxic

log = logging.getLogger(__name__)

# Backpressure for the toxic path: stop reading the source while this much is queued in
# front of the toxics (Toxiproxy buffers up to 1024 chunks ahead of a latency toxic).
_QUEUE_HIGH_BYTES = 4 * 1024 * 1024
_QUEUE_HIGH_CHUNKS = 1024


class Source(Protocol):
    """The socket a link reads from."""

    def pause_reading(self, reason: str) -> None: ...

    def resume_reading(self, reason: str) -> None: ...


class Sink(Protocol):
    """The socket a link writes to."""

    @property
    def write_paused(self) -> bool: ...

    def write(self, data: bytes | memoryview) -> bool:
        """Write; True if the transport kept a reference to ``data`` (not all sent)."""

    async def wait_writable(self) -> None: ...


class LinkOwner(Protocol):
    """The connection a link belongs to."""

    def link_finished(self, link: Link) -> None: ...

    def reset(self) -> None: ...

    def abort(self) -> None: ...


def _resolve(future: asyncio.Future[bool], value: bool) -> None:
    if not future.done():
        future.set_result(value)


class Stage:
    """One toxic on one link: its toxicity roll, its behaviour, and its waits."""

    def __init__(self, link: Link, toxic: Toxic) -> None:
        self.link = link
        self.toxic = toxic
        self.rng = link.rng
        self.active = False
        self.output_closed = False
        self._interrupt: asyncio.Future[bool] | None = None
        self.behaviour = toxic.type.behaviour(toxic, self)

    # -- StageContext -------------------------------------------------------------------
    def now(self) -> float:
        return self.link.loop.time()

    async def sleep(self, seconds: float, *, interruptible: bool = True) -> bool:
        if seconds <= 0:
            return True
        loop = self.link.loop
        future: asyncio.Future[bool] = loop.create_future()
        handle = loop.call_later(seconds, _resolve, future, True)
        if interruptible:
            self._interrupt = future
        try:
            return await future
        finally:
            handle.cancel()
            if self._interrupt is future:
                self._interrupt = None

    async def wait_interrupt(self) -> None:
        future: asyncio.Future[bool] = self.link.loop.create_future()
        self._interrupt = future
        try:
            await future
        finally:
            if self._interrupt is future:
                self._interrupt = None

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Cancellable:
        return self.link.loop.call_later(seconds, callback)

    def close_output(self) -> None:
        self.link.close_from(self)

    def reset_connection(self) -> None:
        self.link.owner.reset()

    # -- chain plumbing -----------------------------------------------------------------
    async def emit(self, chunk: Chunk) -> None:
        await self.link.deliver(self.toxic.seq, chunk)

    async def emit_eof(self) -> None:
        await self.link.deliver_eof(self.toxic.seq)

    def roll(self) -> None:
        """Draw toxicity: the toxic runs on this link only if the draw is below it."""
        self.active = self.rng.random() < self.toxic.toxicity
        if self.active:
            self.behaviour.start()

    def interrupt(self) -> None:
        if self._interrupt is not None:
            _resolve(self._interrupt, False)

    def halt(self) -> None:
        self.interrupt()
        if self.active:
            self.behaviour.stop()

    def restart(self) -> None:
        self.halt()
        self.roll()


class Link:
    """Moves bytes from ``source`` to ``sink`` through the direction's toxics."""

    def __init__(
        self,
        direction: Direction,
        source: Source,
        sink: Sink,
        owner: LinkOwner,
        toxics: list[Toxic],
        rng: random.Random,
    ) -> None:
        self.direction = direction
        self.loop = asyncio.get_running_loop()
        self.rng = rng
        self.owner = owner
        self._source = source
        self._sink = sink
        self._queue: deque[tuple[bytes | None, float, int]] = deque()
        self._queued_bytes = 0
        self._pump: asyncio.Task[None] | None = None
        self._wakeup: asyncio.Future[bool] | None = None
        self._eof = False
        self._input_closed = False
        self.finished = False
        self._stages = [Stage(self, toxic) for toxic in toxics]
        for stage in self._stages:
            stage.roll()
        self._direct = not self._needs_pump()

    @property
    def direct(self) -> bool:
        """True while on the fast path (no active toxic, nothing queued)."""
        return self._direct

    # -- input, called from the source protocol -----------------------------------------
    def feed_view(self, view: memoryview) -> bool:
        """Take bytes read into the source's buffer; True if ``view`` is still referenced.

        Fast path: hand the view to the destination transport, which sends it at once
        or (if the socket is full) keeps it; either way no copy is made here.
        """
        if self._direct:
            return self._sink.write(view)
        self.feed(bytes(view))
        return False

    def feed(self, data: bytes) -> None:
        if self._direct:
            self._sink.write(data)
            return
        if self._input_closed:
            return
        self._queue.append((data, self.loop.time(), 0))
        self._queued_bytes += len(data)
        if self._queued_bytes > _QUEUE_HIGH_BYTES or len(self._queue) > _QUEUE_HIGH_CHUNKS:
            self._source.pause_reading("queue")
        self._kick()

    def feed_eof(self) -> None:
        if self._eof or self.finished:
            return
        self._eof = True
        if self._direct:
            self._finish()
        elif not self._input_closed:
            self._queue.append((None, self.loop.time(), 0))
            self._kick()

    # -- chain changes, called by the proxy's toxic collection --------------------------
    def add_toxic(self, toxic: Toxic) -> None:
        previous = self._stages[-1] if self._stages else None
        stage = Stage(self, toxic)
        self._stages.append(stage)
        stage.roll()
        if previous is not None:
            previous.restart()
        self._chain_changed()

    def update_toxic(self, toxic: Toxic) -> None:
        for stage in self._stages:
            if stage.toxic is toxic:
                stage.restart()
        self._chain_changed()

    def remove_toxic(self, toxic: Toxic) -> None:
        for index, stage in enumerate(self._stages):
            if stage.toxic is toxic:
                was_active = stage.active
                stage.halt()
                del self._stages[index]
                if was_active:
                    stage.behaviour.removed()
                if index > 0:
                    self._stages[index - 1].restart()
                break
        self._chain_changed()

    def _chain_changed(self) -> None:
        if self._needs_pump():
            self._direct = False
        # Wake an idle pump so it can notice an empty chain and return to the fast path.
        self._kick()

    def _needs_pump(self) -> bool:
        return any(stage.active or stage.output_closed for stage in self._stages)

    # -- the pump -----------------------------------------------------------------------
    def _kick(self) -> None:
        if self.finished or self._direct:
            return
        if self._pump is None:
            name = f"faultproxy-{self.direction}"
            self._pump = self.loop.create_task(self._run_pump(), name=name)
        elif self._wakeup is not None:
            _resolve(self._wakeup, True)

    async def _run_pump(self) -> None:
        try:
            while not self.finished:
                if not self._queue:
                    if not self._needs_pump():
                        # Queue drained and nothing to apply: hand back to the fast path.
                        # Nothing is in flight, so byte order is preserved.
                        self._direct = True
                        return
                    self._wakeup = self.loop.create_future()
                    await self._wakeup
                    self._wakeup = None
                    continue
                data, stamp, after = self._queue.popleft()
                if data is None:
                    await self.deliver_eof(after)
                    continue
                self._queued_bytes -= len(data)
                if self._queued_bytes <= _QUEUE_HIGH_BYTES // 2 and len(self._queue) < 512:
                    self._source.resume_reading("queue")
                await self.deliver(after, Chunk(data, stamp))
        except Exception:
            log.exception("fault proxy %s link failed; closing its connection", self.direction)
            self.owner.abort()
        finally:
            self._pump = None
            self._wakeup = None

    def _next_stage(self, after: int) -> Stage | None:
        """The first stage acting on data whose toxic was added after sequence ``after``.

        Going by sequence number rather than list position keeps in-flight data moving
        correctly when the toxic holding it is removed from the chain meanwhile.
        """
        for stage in self._stages:
            if stage.toxic.seq > after and (stage.active or stage.output_closed):
                return stage
        return None

    async def deliver(self, after: int, chunk: Chunk) -> None:
        stage = self._next_stage(after)
        if stage is None:
            await self._write(chunk.data)
        elif not stage.output_closed:
            await stage.behaviour.on_data(chunk, stage.emit)

    async def deliver_eof(self, after: int) -> None:
        stage = self._next_stage(after)
        if stage is None:
            self._finish()
        elif not stage.output_closed:
            await stage.behaviour.on_eof(stage.emit_eof)

    async def _write(self, data: bytes) -> None:
        if self.finished:
            return
        self._sink.write(data)
        if self._sink.write_paused:
            await self._sink.wait_writable()

    def close_from(self, stage: Stage) -> None:
        """A toxic ended its output: drop what is queued and send EOF past it."""
        if stage.output_closed or self.finished:
            return
        stage.output_closed = True
        self._input_closed = True
        self._direct = False
        self._source.pause_reading("closed")
        self._queue.clear()
        self._queued_bytes = 0
        self._queue.append((None, self.loop.time(), stage.toxic.seq))
        self._kick()

    def _finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        for stage in self._stages:
            stage.halt()
        if self._wakeup is not None:
            _resolve(self._wakeup, False)
        self.owner.link_finished(self)

    def shutdown(self) -> asyncio.Task[None] | None:
        """Stop everything at once (connection aborted); return the pump to await."""
        if not self.finished:
            self.finished = True
            for stage in self._stages:
                stage.halt()
        self._queue.clear()
        pump = self._pump
        if pump is not None and pump is not asyncio.current_task():
            pump.cancel()
            return pump
        return None
