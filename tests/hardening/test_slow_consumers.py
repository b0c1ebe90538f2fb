"""Clients that stop reading a stream cost bounded memory, are cut off cleanly, and slow nobody else.

A stalled client is a raw socket with a tiny receive buffer that never reads. The transports apply back-pressure
(sending waits once the socket buffers are full), so the producer upstream stops too; after
VIBEVOICE_STREAM_STALL_SECONDS (60 s by default, 3 s here) the stream is cut off: the HTTP body ends short, a
WebSocket is closed, and the upstream job is cancelled. The gateway is driven by an upstream that can produce
audio far faster than any client reads (256 MiB per stream), so what it buffers shows. Nothing here measures time:
counters and byte counts say what happened.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import threading
from urllib.parse import urlsplit

import httpx
from fastapi import FastAPI, WebSocket
from fastapi.responses import StreamingResponse
from starlette.websockets import WebSocketDisconnect

from tests.conftest import service_env
from tests.support import BIN, ThreadServer, free_port, rss_mb, running, wait_until

CHUNK = 64 * 1024
STREAM_BYTES = 256 * 2**20
RSS_BOUND_MB = 30


def metric(url: str, name: str, match: str = "") -> float:
    total = 0.0
    for line in httpx.get(url + "/metrics", timeout=10).text.splitlines():
        if line.startswith(name) and match in line and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


class Firehose:
    """An upstream TTS/live service that streams as fast as it is allowed to; it counts what it got out."""

    def __init__(self) -> None:
        self.sent: dict[str, int] = {}
        self.closed: set[str] = set()
        self.app = FastAPI()
        self.app.get("/v1/models")(self.models)
        self.app.get("/ready")(self.ready)
        self.app.post("/v1/audio/speech")(self.speech)
        self.app.websocket("/v1/realtime")(self.realtime)

    async def models(self) -> dict:
        return {
            "object": "list",
            "data": [{"id": "vibevoice-realtime", "object": "model", "created": 1, "owned_by": "t"}],
        }

    async def ready(self) -> dict:
        return {"status": "ready"}

    async def speech(self, body: dict) -> StreamingResponse:
        key = body["input"]
        self.sent[key] = 0
        total = STREAM_BYTES if key.startswith("stall") else 4 * CHUNK

        async def gen():
            try:
                for i in range(total // CHUNK):
                    self.sent[key] += CHUNK
                    yield bytes([i % 251]) * CHUNK
                    await asyncio.sleep(0)
            finally:
                self.closed.add(key)

        return StreamingResponse(gen(), media_type="audio/pcm")

    async def realtime(self, ws: WebSocket) -> None:
        await ws.accept()
        key = "ws"
        self.sent[key] = 0
        gone = asyncio.ensure_future(ws.receive())  # the close frame (or the connection lost)
        try:
            for _ in range(STREAM_BYTES // CHUNK):
                if gone.done():
                    break
                await ws.send_text(json.dumps({"type": "response.output_audio.delta", "delta": "A" * CHUNK}))
                self.sent[key] += CHUNK
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass
        finally:
            gone.cancel()
            self.closed.add(key)


def stalled_socket(base: str) -> socket.socket:
    u = urlsplit(base)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((u.hostname, u.port))
    return s


def stalled_websocket(base: str, path: str) -> socket.socket:
    """A WebSocket opened by hand on a raw socket (no client library reading in the background), never read."""
    s = stalled_socket(base)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    s.settimeout(60)
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return s


def masked_text_frame(text: str) -> bytes:
    """One client text frame (clients must mask), for sending on a raw socket."""
    data = text.encode()
    mask = os.urandom(4)
    n = len(data)
    head = bytes([0x81]) + (
        bytes([0x80 | n])
        if n < 126
        else bytes([0x80 | 126]) + n.to_bytes(2, "big")
        if n < 65536
        else bytes([0x80 | 127]) + n.to_bytes(8, "big")
    )
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def stalled_speech(base: str, key: str) -> socket.socket:
    s = stalled_socket(base)
    body = json.dumps({"model": "tts-1", "input": key, "voice": "carter", "response_format": "pcm"}).encode()
    head = (
        "POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    s.sendall(head.encode() + body)
    return s


def read_all(s: socket.socket) -> bytes:
    s.settimeout(60)  # hang guard only: the server must end the response
    out = bytearray()
    try:
        while chunk := s.recv(1 << 20):
            out += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    s.close()
    return bytes(out)


def test_gateway_cuts_off_stalled_streams_with_bounded_memory(tmp_path):
    hose = Firehose()
    up = ThreadServer(hose.app).start()
    port = free_port()
    gw = f"http://127.0.0.1:{port}"
    env = service_env(
        tmp_path,
        VIBEVOICE_TTS_URL=up.url,
        VIBEVOICE_ASR_URL="",
        VIBEVOICE_LIVE_URL=up.url,
        VIBEVOICE_STREAM_STALL_SECONDS="3",
    )
    try:
        with running(
            [str(BIN / "vibevoice-gateway"), "--host", "127.0.0.1", "--port", str(port)],
            env,
            tmp_path / "gw.log",
            gw + "/ready",
        ) as proc:
            normal = httpx.post(gw + "/v1/audio/speech", json={"model": "tts-1", "input": "n0", "voice": "carter"})
            assert normal.status_code == 200 and len(normal.content) == 4 * CHUNK
            rss_before = rss_mb(proc.proc.pid)

            # Two stalled HTTP streams and one stalled WebSocket session, all at once.
            stalled = [stalled_speech(gw, "stall-a"), stalled_speech(gw, "stall-b")]
            ws = stalled_websocket(gw, "/v1/realtime?model=gpt-realtime")
            assert wait_until(lambda: {"stall-a", "stall-b", "ws"} <= set(hose.sent), timeout=60), (
                hose.sent,
                proc.log()[-3000:],
            )

            # Beside them, normal clients are answered in full.
            for i in range(1, 4):
                r = httpx.post(gw + "/v1/audio/speech", json={"model": "tts-1", "input": f"n{i}", "voice": "carter"})
                assert r.status_code == 200 and r.content == normal.content

            # The stalls are cut off, and the upstream streams were closed (their jobs cancelled), far from their end.
            assert wait_until(lambda: metric(gw, "vibevoice_stalled_clients_total", 'kind="http"') == 2)
            assert wait_until(
                lambda: metric(gw, "vibevoice_stalled_clients_total", 'kind="websocket"') == 1, timeout=30
            ), (
                hose.sent,
                proc.log()[-3000:],
            )
            assert wait_until(lambda: {"stall-a", "stall-b", "ws"} <= hose.closed, timeout=30), (hose.closed, hose.sent)
            for key in ("stall-a", "stall-b"):
                assert hose.sent[key] < STREAM_BYTES / 4, (key, hose.sent[key])  # back-pressure held the producer
            grew = rss_mb(proc.proc.pid) - rss_before
            assert grew < RSS_BOUND_MB, f"gateway RSS grew {grew:.1f} MB"
            for s in stalled:
                raw = read_all(s)
                assert raw.startswith(b"HTTP/1.1 200") and not raw.endswith(b"0\r\n\r\n"), (
                    "a cut stream must not look complete"
                )
            ws.close()
    finally:
        up.stop()


def test_live_service_closes_a_session_whose_client_stopped_reading(stack):
    """The live service's own outgoing WebSocket: a caller that stops reading a long answer is closed."""
    sessions = lambda: httpx.get(stack["live"] + "/ready").json()["sessions"]  # noqa: E731

    def cut() -> float:
        live = stack["live"]
        return metric(live, "vibevoice_stalled_clients_total", 'kind="websocket"') + metric(
            live, "vibevoice_live_errors_total", 'code="slow_client"'
        )

    before = cut()
    ws = stalled_websocket(stack["live"], "/v1/realtime?model=gpt-realtime")
    # A flood of conversation items the server must echo back (about 50 KB each), none of which this client reads:
    # the server's sends block, and the session is ended instead of buffering without bound.
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "word " * 10000}]}
    frame = masked_text_frame(json.dumps({"type": "conversation.item.create", "item": item}))
    sender = threading.Thread(target=_flood, args=(ws, frame), daemon=True)
    sender.start()
    assert wait_until(lambda: cut() > before, timeout=120)
    assert wait_until(lambda: sessions() == 0)
    ws.close()


def _flood(ws: socket.socket, frame: bytes) -> None:
    try:
        for _ in range(5000):
            ws.sendall(frame)
    except OSError:  # the server closed us: that is the point
        return
