"""rujuk's WebSocket protocol (server/websocket.py) under a real uvicorn, spoken to over a raw TCP socket.

Each test writes the bytes a client (or a broken client) would send and reads what the server answers, so the
RFC 6455 behaviour is checked on the wire: the handshake and its refusals, masking, fragments, control frames,
the closing handshake in both directions, the limits, keep-alive and shutdown.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.servers import ROOT, free_port, stop

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
VALID_CLOSE = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}
TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA


class Uvicorn:
    def __init__(self, log_dir: Path, *options: str) -> None:
        self.port = free_port()
        self.log = log_dir / f"ws-{self.port}.log"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "tests.support.ws_echo:app", "--host", "127.0.0.1",
                 "--port", str(self.port), "--ws", "server.websocket:WebSocketProtocol", *options],
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(self.log.read_text())

    def stop(self) -> None:
        stop(self.proc)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Uvicorn]:
    s = Uvicorn(tmp_path_factory.mktemp("ws"), "--ws-max-size", "100000")
    yield s
    s.stop()
    log = s.log.read_text()
    # the one traceback allowed is the application's own failure, which /crash causes on purpose
    assert log.count("Traceback") == log.count("RuntimeError: the application failed"), log


class Peer:
    """A WebSocket client written out byte by byte."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buffer = b""

    def request(self, path: str = "/echo", *, key: str | None = None, version: str = "13", protocols: str | None = None,
                extra: str = "", method: str = "GET") -> tuple[int, dict[str, str], bytes]:
        self.key = key if key is not None else base64.b64encode(os.urandom(16)).decode()
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Upgrade: websocket", "Connection: Upgrade",
                 f"Sec-WebSocket-Key: {self.key}", f"Sec-WebSocket-Version: {version}"]
        if protocols:
            lines.append(f"Sec-WebSocket-Protocol: {protocols}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode())
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.buffer += chunk
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        status = int(status_line.split()[1])
        body = b""
        if status != 101:
            length = int(headers.get("content-length", "0"))
            while len(self.buffer) < length:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.buffer += chunk
            body, self.buffer = self.buffer[:length], self.buffer[length:]
        return status, headers, body

    def open(self, path: str = "/echo", **kwargs: str) -> Peer:
        status, headers, _ = self.request(path, **kwargs)
        assert status == 101, status
        expected = base64.b64encode(hashlib.sha1(self.key.encode() + GUID).digest()).decode()
        assert headers["sec-websocket-accept"] == expected
        return self

    def send(self, opcode: int, payload: bytes = b"", *, fin: bool = True, mask: bool = True, rsv: int = 0) -> None:
        self.sock.sendall(self.encode(opcode, payload, fin=fin, mask=mask, rsv=rsv))

    @staticmethod
    def encode(opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True, rsv: int = 0) -> bytes:
        first = (0x80 if fin else 0) | rsv << 4 | opcode
        n = len(payload)
        bit = 0x80 if mask else 0
        if n < 126:
            head = bytes((first, bit | n))
        elif n < 65536:
            head = struct.pack("!BBH", first, bit | 126, n)
        else:
            head = struct.pack("!BBQ", first, bit | 127, n)
        if not mask:
            return head + payload
        key = os.urandom(4)
        return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed by the server")
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def frame(self) -> tuple[bool, int, bytes]:
        first, second = self._read(2)
        assert not second & 0x80, "a server frame must not be masked"
        assert not first & 0x70
        n = second & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._read(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._read(8))[0]
        return bool(first & 0x80), first & 0x0F, self._read(n)

    def text(self) -> str:
        fin, opcode, payload = self.frame()
        assert fin and opcode == TEXT, (opcode, payload)
        return payload.decode()

    def close_code(self) -> tuple[int, str]:
        fin, opcode, payload = self.frame()
        while opcode == PING:
            fin, opcode, payload = self.frame()
        assert opcode == CLOSE, (opcode, payload)
        return struct.unpack("!H", payload[:2])[0], payload[2:].decode()

    def at_eof(self, wait: float = 5.0) -> bool:
        self.sock.settimeout(wait)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


@pytest.fixture()
def peer(server: Uvicorn) -> Iterator[Peer]:
    p = Peer(server.port)
    yield p
    p.close()


def test_handshake_accepts_with_the_subprotocol_and_the_applications_headers(peer: Peer) -> None:
    status, headers, _ = peer.request(protocols="graphql-ws, graphql-transport-ws")
    assert status == 101
    assert headers["upgrade"].lower() == "websocket" and headers["connection"].lower() == "upgrade"
    assert headers["sec-websocket-accept"] == base64.b64encode(
        hashlib.sha1(peer.key.encode() + GUID).digest()).decode()
    assert headers["sec-websocket-protocol"] == "graphql-transport-ws"
    assert headers["x-echo"] == "yes"
    assert "sec-websocket-extensions" not in headers  # no permessage-deflate


def test_no_subprotocol_header_when_the_application_chooses_none(peer: Peer) -> None:
    status, headers, _ = peer.request(protocols="chat")
    assert status == 101 and "sec-websocket-protocol" not in headers


def test_scope_carries_the_path_and_query(peer: Peer) -> None:
    peer.open("/echo%20room?token=abc")
    peer.send(TEXT, b"scope")
    assert json.loads(peer.text()) == {"path": "/echo room", "query": "token=abc", "scheme": "ws"}


@pytest.mark.parametrize("kwargs", [{"key": "not base64!"}, {"key": base64.b64encode(b"short").decode()},
                                    {"method": "POST"}])
def test_invalid_handshakes_are_refused_with_400(server: Uvicorn, kwargs: dict[str, str]) -> None:
    p = Peer(server.port)
    status, headers, body = p.request(**kwargs)
    assert status == 400 and b"invalid request" in body
    assert p.at_eof()
    p.close()


def test_an_unknown_version_is_refused_with_426(peer: Peer) -> None:
    status, headers, _ = peer.request(version="8")
    assert status == 426 and headers["sec-websocket-version"] == "13"


def test_an_oversized_handshake_is_refused_with_431(peer: Peer) -> None:
    status, _, _ = peer.request(extra="X-Padding: " + "a" * 20_000 + "\r\n")
    assert status == 431


def test_closing_before_accepting_answers_403(peer: Peer) -> None:
    status, _, _ = peer.request("/deny")
    assert status == 403
    assert peer.at_eof()


def test_an_application_error_before_accepting_answers_500(peer: Peer) -> None:
    status, _, body = peer.request("/crash")
    assert status == 500 and b"Traceback" not in body
    assert peer.at_eof()


def test_text_and_binary_messages_are_echoed(peer: Peer) -> None:
    peer.open()
    peer.send(TEXT, "halo, kabupaten Ngawi — ✓".encode())
    assert peer.text() == "halo, kabupaten Ngawi — ✓"
    peer.send(BINARY, bytes(range(256)))
    assert peer.frame() == (True, BINARY, bytes(range(256)))
    medium = os.urandom(300)
    peer.send(BINARY, medium)
    assert peer.frame() == (True, BINARY, medium)


def test_large_messages_use_64_bit_lengths_both_ways(peer: Peer) -> None:
    peer.open()
    peer.send(TEXT, b"big")
    assert peer.text() == "x" * 70_000
    payload = b"y" * 80_000
    peer.send(TEXT, payload)
    assert peer.text() == payload.decode()


def test_fragmented_messages_are_reassembled_with_pings_between_fragments(peer: Peer) -> None:
    peer.open()
    peer.send(TEXT, b"frag", fin=False)
    peer.send(0x0, b"men", fin=False)
    peer.send(PING, b"in between")
    assert peer.frame() == (True, PONG, b"in between")
    peer.send(0x0, "ted ✓".encode())
    assert peer.text() == "fragmented ✓"


def test_frames_split_across_packets_are_read(peer: Peer) -> None:
    peer.open()
    data = Peer.encode(TEXT, b"split " * 40)
    for i in range(0, len(data), 7):
        peer.sock.sendall(data[i:i + 7])
        time.sleep(0.001)
    assert peer.text() == "split " * 40


def test_a_client_close_is_answered_with_the_same_code(peer: Peer) -> None:
    peer.open()
    peer.send(CLOSE, struct.pack("!H", 1000) + b"done")
    assert peer.close_code()[0] == 1000
    assert peer.at_eof()


def test_a_server_close_waits_for_the_clients_answer(peer: Peer) -> None:
    peer.open()
    peer.send(TEXT, b"close")
    assert peer.close_code() == (4001, "bye")
    peer.send(CLOSE, struct.pack("!H", 4001))
    assert peer.at_eof()


@pytest.mark.parametrize(("frame", "code"), [
    (Peer.encode(TEXT, b"unmasked", mask=False), 1002),
    (Peer.encode(TEXT, b"reserved", rsv=4), 1002),
    (Peer.encode(0x3, b"unknown opcode"), 1002),
    (Peer.encode(PING, b"p" * 126), 1002),
    (Peer.encode(PING, b"fragmented ping", fin=False), 1002),
    (Peer.encode(0x0, b"continuation without a start"), 1002),
    (Peer.encode(CLOSE, struct.pack("!H", 999)), 1002),
    (Peer.encode(CLOSE, b"\x03"), 1002),
    (Peer.encode(TEXT, b"\xff\xfe not utf-8"), 1007),
    (Peer.encode(CLOSE, struct.pack("!H", 1000) + b"\xff"), 1007),
    (Peer.encode(BINARY, b"z" * 100_001), 1009),
])
def test_protocol_errors_close_with_the_rfc_code(peer: Peer, frame: bytes, code: int) -> None:
    peer.open()
    peer.sock.sendall(frame)
    assert peer.close_code()[0] == code
    assert peer.at_eof()


def test_a_message_over_the_limit_in_fragments_is_refused(peer: Peer) -> None:
    peer.open()
    peer.send(BINARY, b"a" * 60_000, fin=False)
    peer.send(0x0, b"b" * 60_000)
    assert peer.close_code()[0] == 1009


def test_a_new_message_inside_a_fragmented_one_is_refused(peer: Peer) -> None:
    peer.open()
    peer.send(TEXT, b"start", fin=False)
    peer.send(TEXT, b"another")
    assert peer.close_code()[0] == 1002


@pytest.fixture(scope="module")
def lively(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Uvicorn]:
    """A server that pings every 0.3 s and gives up on a peer after 0.5 s."""
    s = Uvicorn(tmp_path_factory.mktemp("ws-lively"), "--ws-ping-interval", "0.3", "--ws-ping-timeout", "0.5")
    yield s
    s.stop()


def wait_for_log(server: Uvicorn, text: str, wait: float = 5.0) -> str:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        log = server.log.read_text()
        if text in log:
            return log
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in the server's log:\n{server.log.read_text()[-3000:]}")


def test_keepalive_pings_and_a_silent_peer_is_closed(lively: Uvicorn) -> None:
    s = lively
    if True:
        answering, silent = Peer(s.port).open(), Peer(s.port).open()
        deadline = time.monotonic() + 2.0
        pings = 0
        while time.monotonic() < deadline:  # three or more rounds, each answered
            fin, opcode, payload = answering.frame()
            assert opcode == PING and len(payload) == 4
            answering.send(PONG, payload)
            pings += 1
        assert pings >= 3
        answering.send(TEXT, b"still here")
        while (frame := answering.frame())[1] == PING:
            answering.send(PONG, frame[2])
        assert frame == (True, TEXT, b"still here")
        assert silent.frame()[1] == PING  # never answered
        assert silent.close_code() == (1011, "keepalive ping timeout")
        assert silent.at_eof()
        answering.close()
        silent.close()


def test_shutdown_closes_open_sockets_with_1012(tmp_path: Path) -> None:
    s = Uvicorn(tmp_path)
    p = Peer(s.port).open()
    p.send(TEXT, b"hello")
    assert p.text() == "hello"
    s.proc.send_signal(signal.SIGTERM)
    assert p.close_code()[0] == 1012
    assert p.at_eof()
    p.close()
    assert s.proc.wait(timeout=15) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once stopped


def test_many_sockets_each_get_their_own_messages(server: Uvicorn) -> None:
    peers = [Peer(server.port).open() for _ in range(50)]
    for i, p in enumerate(peers):
        p.send(TEXT, f"socket {i}".encode())
    for i, p in enumerate(peers):
        assert p.text() == f"socket {i}"
        p.send(CLOSE, struct.pack("!H", 1001))
        assert p.close_code()[0] == 1001
        p.close()


def test_an_application_that_returns_after_accepting_closes_cleanly(peer: Peer) -> None:
    peer.open("/return")
    assert peer.close_code()[0] == 1000
    peer.send(CLOSE, struct.pack("!H", 1000))
    assert peer.at_eof()


def test_an_application_that_fails_after_accepting_closes_with_1011(peer: Peer) -> None:
    peer.open("/raise")
    assert peer.close_code()[0] == 1011
    peer.send(CLOSE, struct.pack("!H", 1011))
    assert peer.at_eof()


def test_a_long_close_reason_is_cut_at_a_character_boundary(peer: Peer) -> None:
    peer.open()
    peer.send(TEXT, b"close-long")
    code, reason = peer.close_code()  # decodes strictly: a character cut in half would fail here
    assert code == 4002 and reason == "é" * 61 and len(reason.encode()) <= 123


def test_the_application_gets_one_disconnect_and_receives_it_again(server: Uvicorn) -> None:
    p = Peer(server.port).open()
    p.send(CLOSE, struct.pack("!H", 4321))
    assert p.close_code()[0] == 4321
    assert p.at_eof()
    p.close()
    wait_for_log(server, "disconnect 4321, then websocket.disconnect 4321")


def test_a_message_in_many_small_fragments(peer: Peer) -> None:
    peer.open()
    frames = [Peer.encode(TEXT, b"s", fin=False)]
    for i in range(5000):
        frames.append(Peer.encode(0x0, b"" if i % 2 else b"m", fin=False))
    frames.append(Peer.encode(0x0, b"e"))
    peer.sock.sendall(b"".join(frames))
    assert peer.text() == "s" + "m" * 2500 + "e"


def test_a_cancelled_sender_does_not_disturb_the_others_under_back_pressure(server: Uvicorn) -> None:
    p = Peer(server.port).open("/pressure")
    time.sleep(1.0)  # not reading: the server's writes back up, both senders wait; one is cancelled
    seen: list[str] = []
    while True:
        text = p.text()
        if text == "B done":
            break
        seen.append(text[:3])
    assert [t for t in seen if t.startswith("B")] == [f"B{i:02d}" for i in range(64)]
    wait_for_log(server, "pressure: B done")
    p.close()


def test_an_application_that_never_reads_keeps_a_live_peer(lively: Uvicorn) -> None:
    p = Peer(lively.port).open("/push")
    for i in range(40):  # more than reading holds for an application that does not take them
        p.send(TEXT, f"unread {i}".encode())
    ticks = 0
    while True:
        fin, opcode, payload = p.frame()
        if opcode == PING:
            p.send(PONG, payload)
        elif opcode == TEXT:
            assert payload == b"tick"
            ticks += 1
        else:
            assert opcode == CLOSE and struct.unpack("!H", payload[:2])[0] == 1000, payload
            break
    assert ticks == 20  # two seconds, several ping rounds, never closed for a missed pong
    p.close()


def test_a_peer_that_stops_reading_is_let_go(lively: Uvicorn) -> None:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", lively.port))
    p = Peer.__new__(Peer)
    p.sock, p.buffer = sock, b""
    p.open("/flood")  # and never read again: no pong, no close answer, the server's buffer full
    wait_for_log(lively, "flood stopped: ClientDisconnected", wait=10)
    p.close()


PAYLOADS = st.one_of(st.binary(max_size=200), st.text(max_size=60).map(lambda t: t.encode("utf-8", "surrogatepass")),
                     st.sampled_from([b"\xff\xfe", b"\xe2\x82", struct.pack("!H", 1000), struct.pack("!H", 999),
                                      struct.pack("!H", 4000) + b"\xc3", b"x" * 126]))
FRAMES = st.builds(lambda opcode, payload, fin, mask, rsv: Peer.encode(opcode, payload, fin=fin, mask=mask, rsv=rsv),
                   st.sampled_from([0x0, TEXT, BINARY, 0x3, CLOSE, PING, PONG, 0xB]), PAYLOADS,
                   st.booleans(), st.sampled_from([True, True, True, False]), st.sampled_from([0, 0, 0, 1, 4]))
# a raw header claiming a length it does not send (up to 2^63), or cut short
HEADERS = st.builds(lambda first, n: bytes((first, 0x80 | 127)) + struct.pack("!Q", n),
                    st.integers(0, 255), st.integers(0, 2**63 - 1))


@settings(derandomize=True, database=None, deadline=None, max_examples=150, print_blob=False,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(frames=st.lists(st.one_of(FRAMES, HEADERS), max_size=6), chunk=st.integers(1, 64), cut=st.integers(0, 8))
def test_fuzzed_frames_end_cleanly(server: Uvicorn, frames: list[bytes], chunk: int, cut: int) -> None:
    """Any sequence of frames, valid or not, split anywhere and possibly cut short: every frame the server
    sends is well formed (unmasked, no reserved bits, close codes the RFC allows) and, once the client stops
    sending, the connection ends; the server keeps serving (the module's fixture checks its log for crashes)."""
    p = Peer(server.port).open()
    data = b"".join(frames)
    data = data[:len(data) - cut] if cut < len(data) else data
    try:
        for i in range(0, len(data), chunk):
            p.sock.sendall(data[i:i + chunk])
        p.sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # the server already closed: fine
    p.sock.settimeout(5)
    try:
        while True:
            fin, opcode, payload = p.frame()
            assert opcode in (TEXT, BINARY, CLOSE, PONG), opcode
            if opcode == CLOSE:
                code = struct.unpack("!H", payload[:2])[0]
                assert code in VALID_CLOSE or 3000 <= code <= 4999, code  # its own, or the peer's echoed
                payload[2:].decode()
    except ConnectionError:
        pass  # the end of the connection
    finally:
        p.close()


def test_the_server_serves_after_the_fuzzing(peer: Peer) -> None:
    peer.open()
    peer.send(TEXT, b"still here")
    assert peer.text() == "still here"
