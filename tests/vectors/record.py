"""A recording DNS proxy on loopback, used to capture tests/vectors/captured.json.

    python tests/vectors/record.py LISTEN_PORT UPSTREAM_PORT OUT.jsonl

Every message a peer sends to 127.0.0.1:LISTEN_PORT (a UDP datagram, or a TCP message
without its two-byte length) is appended to OUT.jsonl as ``{"t", "proto", "hex"}`` and
forwarded to the zoned on 127.0.0.1:UPSTREAM_PORT, whose replies go back unchanged, so
the peer behaves as it does against zoned itself.  Not a test: tests/vectors/README.md
says how each vector was captured with it.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import threading
import time


class Recorder:
    def __init__(self, upstream: int, out: str) -> None:
        self.upstream = upstream
        self.out = out
        self.lock = threading.Lock()

    def record(self, proto: str, data: bytes) -> None:
        line = json.dumps({"t": time.time(), "proto": proto, "hex": data.hex()})
        with self.lock, open(self.out, "a") as out:
            out.write(line + "\n")

    def forward_udp(self, server: socket.socket, data: bytes, peer: tuple[str, int]) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as up:
            up.settimeout(3)
            up.sendto(data, ("127.0.0.1", self.upstream))
            try:
                server.sendto(up.recv(65535), peer)
            except OSError:
                pass

    def serve_udp(self, server: socket.socket) -> None:
        while True:
            data, peer = server.recvfrom(65535)
            self.record("udp", data)
            threading.Thread(target=self.forward_udp, args=(server, data, peer),
                             daemon=True).start()

    def pipe_tcp(self, conn: socket.socket) -> None:
        up = socket.create_connection(("127.0.0.1", self.upstream))

        def back() -> None:
            try:
                while chunk := up.recv(65535):
                    conn.sendall(chunk)
            except OSError:
                pass
            conn.close()

        threading.Thread(target=back, daemon=True).start()
        pending = b""
        try:
            while chunk := conn.recv(65535):
                up.sendall(chunk)
                pending += chunk
                while len(pending) >= 2:
                    (size,) = struct.unpack("!H", pending[:2])
                    if len(pending) < 2 + size:
                        break
                    self.record("tcp", pending[2:2 + size])
                    pending = pending[2 + size:]
        except OSError:
            pass
        up.close()


def main(listen: int, upstream: int, out: str) -> None:
    recorder = Recorder(upstream, out)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", listen))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("127.0.0.1", listen))
    tcp.listen(16)
    threading.Thread(target=recorder.serve_udp, args=(udp,), daemon=True).start()
    while True:
        conn, _peer = tcp.accept()
        threading.Thread(target=recorder.pipe_tcp, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
