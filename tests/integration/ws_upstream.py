"""A python3-websockets echo server on loopback, in its own thread and event loop, as the WebSocket tests'
upstream. Import it after `pytest.importorskip("websockets")`."""

from __future__ import annotations

import asyncio
import threading

import websockets

import eg


class WebSocketEchoServer:
    """Echoes every message; records each connection's close code. Subclasses override `_handle`."""

    def __init__(self, max_size: int = 4 * 1024 * 1024, subprotocols: list[str] | None = None):
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self.close_codes: list[int] = []
        self._max_size = max_size
        self._subprotocols = subprotocols
        self._ready = threading.Event()
        self._stop: asyncio.Future | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self._ready.wait(10)

    async def _handle(self, ws, path=None):
        await self._echo(ws)

    async def _echo(self, ws):
        try:
            async for message in ws:
                await self._on_message(message)
                await ws.send(message)
        except websockets.ConnectionClosed:
            pass
        self.close_codes.append(ws.close_code)

    async def _on_message(self, message) -> None:
        pass

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def main():
            self._stop = self.loop.create_future()
            async with websockets.serve(self._handle, eg.LOOPBACK, 0, max_size=self._max_size,
                                        subprotocols=self._subprotocols) as server:
                self.port = server.sockets[0].getsockname()[1]
                self._ready.set()
                await self._stop

        self.loop.run_until_complete(main())

    @property
    def address(self) -> str:
        return f"{eg.LOOPBACK}:{self.port}"

    def stop(self) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set_result, None)
        self.thread.join(10)
