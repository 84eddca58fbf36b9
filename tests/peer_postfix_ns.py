"""Run zoned on port 53 and Postfix's postscreen in a private network and mount namespace,
then talk SMTP to postscreen from each client address; print the transcripts as JSON.

Postfix resolves with the system resolver (``/etc/resolv.conf``, port 53), so the test runs
this module as root under ``unshare --net --mount --fork``: loopback with the client
addresses on it, a resolv.conf naming 127.0.0.1 bound over the real one, and the test's
Postfix configuration directory bound over /etc/postfix.  Nothing leaves the namespace.

    python -m tests.peer_postfix_ns CONFIG.json
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dns.exception
import dns.message
import dns.query

from tests.support.polling import TimedOut, until
from tests.support.processes import stop


def run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


def replies(sock: socket.socket, buffer: list[bytes]) -> str:
    """The next complete SMTP reply (all its lines)."""
    lines: list[str] = []
    while True:
        data = b"".join(buffer)
        if b"\r\n" in data:
            line, rest = data.split(b"\r\n", 1)
            buffer[:] = [rest]
            text = line.decode("ascii", "replace")
            lines.append(text)
            if len(text) < 4 or text[3] != "-":
                return "\n".join(lines)
            continue
        chunk = sock.recv(4096)
        if not chunk:
            return "\n".join(lines + ["<closed>"])
        buffer.append(chunk)


def session(client: str, port: int) -> list[str]:
    """An SMTP conversation from ``client``: banner, EHLO, MAIL, RCPT, QUIT."""
    with socket.create_connection(("127.0.0.1", port), timeout=30,
                                  source_address=(client, 0)) as sock:
        buffer: list[bytes] = []
        transcript = [replies(sock, buffer)]
        for command in ("EHLO client.example.com", "MAIL FROM:<sender@example.com>",
                        "RCPT TO:<postmaster@example.org>", "QUIT"):
            if transcript[-1].endswith("<closed>"):
                break
            sock.sendall(command.encode() + b"\r\n")
            transcript.append(replies(sock, buffer))
        return transcript


def main(config_path: str) -> int:
    config = json.loads(Path(config_path).read_text())
    run("ip", "link", "set", "lo", "up")
    for client in config["clients"]:
        run("ip", "addr", "add", f"{client}/32", "dev", "lo")
    run("mount", "--bind", config["resolv_conf"], "/etc/resolv.conf")
    run("mount", "--bind", config["postfix_dir"], "/etc/postfix")
    zoned = subprocess.Popen(
        [sys.executable, "-m", "zoned.cli", "-c", config["zones"], "--listen", "127.0.0.1",
         "--port", "53", "--log-file", config["zoned_log"]])
    try:
        def answers() -> bool:
            if zoned.poll() is not None:
                raise RuntimeError("zoned did not start in the namespace")
            try:
                dns.query.udp(dns.message.make_query("2.0.0.127.bl.example.net", "A"),
                              "127.0.0.1", port=53, timeout=1)
                return True
            except (dns.exception.Timeout, OSError):
                return False

        try:
            until(answers, "zoned in the namespace", 30, interval=0.1)
        except TimedOut:
            raise RuntimeError("zoned did not start in the namespace") from None
        run("postfix", "start")
        try:
            with ThreadPoolExecutor(max_workers=len(config["clients"])) as pool:
                transcripts = dict(zip(config["clients"],
                                       pool.map(lambda c: session(c, 25), config["clients"]),
                                       strict=True))
        finally:
            subprocess.run(["postfix", "stop"], capture_output=True)
    finally:
        stop(zoned)
    print(json.dumps(transcripts))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
