"""A real Audit Record Repository: rsyslogd on loopback, started and stopped by the tests and
the benchmark (``bench.audit_throughput``).

rsyslog listens with imtcp over gtls (RFC 5425, client certificates required and checked
against the test CA) and with imudp (RFC 5426), and writes every message it receives to one
file, raw (``%rawmsg%``) and one per line, so a test compares bytes with what was sent.
``maxMessageSize`` is raised to 64 kB (the default 8 kB truncates audit XML) and control
characters are not escaped on receipt. Certificates are made with trustme (:func:`make_pki`).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import trustme

RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"

_CONFIG = """\
global(
  workDirectory="{work}"
  maxMessageSize="64k"
  parser.escapeControlCharactersOnReceive="off"
  defaultNetstreamDriver="gtls"
  defaultNetstreamDriverCAFile="{ca}"
  defaultNetstreamDriverCertFile="{cert}"
  defaultNetstreamDriverKeyFile="{key}"
)
module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1"
       streamDriver.authMode="x509/certvalid")
input(type="imtcp" address="127.0.0.1" port="{tcp_port}")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="{udp_port}")
template(name="raw" type="string" string="%rawmsg%\\n")
action(type="omfile" file="{out}" template="raw")
"""


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class Pki:
    ca_file: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str


class Rsyslog:
    """One rsyslogd process; ``stop``/``start`` keep its ports, files and received log."""

    def __init__(self, directory: Path, pki: Pki) -> None:
        self.directory = directory
        self.tcp_port = free_port()
        self.udp_port = free_port(socket.SOCK_DGRAM)
        self.out = directory / "received.log"
        self.config = directory / "rsyslog.conf"
        self.pid_file = directory / "rsyslogd.pid"
        work = directory / "work"
        work.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            _CONFIG.format(
                work=work,
                ca=pki.ca_file,
                cert=pki.server_cert,
                key=pki.server_key,
                tcp_port=self.tcp_port,
                udp_port=self.udp_port,
                out=self.out,
            )
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.process is None
        self.pid_file.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [RSYSLOGD, "-n", "-f", str(self.config), "-i", str(self.pid_file)],
            stdout=subprocess.DEVNULL,
            stderr=(self.directory / "rsyslogd.stderr").open("ab"),
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"rsyslogd exited: {self.stderr()}")
            # The pid file appears once the listeners are up.
            if self.pid_file.exists() and self._listening():
                return
            time.sleep(0.05)
        raise RuntimeError(f"rsyslogd did not start: {self.stderr()}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def received(self) -> list[bytes]:
        """Every message stored so far, as bytes, in arrival order."""
        if not self.out.exists():
            return []
        data = self.out.read_bytes()
        return data.split(b"\n")[:-1]

    def wait_for(self, count: int, timeout_s: float = 20.0) -> list[bytes]:
        """Wait until at least ``count`` messages are stored; return them all."""
        deadline = time.monotonic() + timeout_s
        while True:
            lines = self.received()
            if len(lines) >= count or time.monotonic() > deadline:
                return lines
            time.sleep(0.05)

    def stderr(self) -> str:
        path = self.directory / "rsyslogd.stderr"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def _listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.tcp_port), timeout=0.2):
                return True
        except OSError:
            return False



def make_pki(directory: Path) -> Pki:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("gateway.test")
    paths = {}
    for name, blob in (
        ("ca.pem", ca.cert_pem),
        ("server.pem", server.cert_chain_pems[0]),
        ("server.key", server.private_key_pem),
        ("client.pem", client.cert_chain_pems[0]),
        ("client.key", client.private_key_pem),
    ):
        blob.write_to_path(str(directory / name))
        paths[name] = str(directory / name)
    return Pki(
        ca_file=paths["ca.pem"],
        server_cert=paths["server.pem"],
        server_key=paths["server.key"],
        client_cert=paths["client.pem"],
        client_key=paths["client.key"],
    )
