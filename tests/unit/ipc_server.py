"""A real control socket for the command tests: ``ipc.serve`` on its own event loop, in a thread."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from ipmp.mpathd import control, ipc
from ipmp.mpathd.ipc import Broker, Peer
from ipmp.mpathd.protocol import Reply, Request


class ServerThread:
    """``ipc.serve`` on ``root``'s control socket; a subclass answers in :meth:`answer`.

    Every request is kept in ``requests``, in the order it came.  ``broker``
    (if any) carries the event streams.  :meth:`start` returns once the socket
    listens; :meth:`stop` closes it and ends the loop and its thread.
    """

    def __init__(self, root: Path, *, broker: Broker | None = None) -> None:
        self.root = root
        self.requests: list[Request] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: asyncio.AbstractServer | None = None
        self._broker = broker

    def answer(self, request: Request) -> Reply:
        raise NotImplementedError

    async def _handle(self, request: Request, peer: Peer) -> Reply:
        self.requests.append(request)
        return self.answer(request)

    def start(self) -> None:
        self.thread.start()
        serving = ipc.serve(control.socket_path(self.root), self._handle, log=lambda line: None,
                            broker=self._broker)
        self.server = asyncio.run_coroutine_threadsafe(serving, self.loop).result(5)

    def stop(self) -> None:
        async def close() -> None:
            if self.server is not None:
                self.server.close()
                await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()
