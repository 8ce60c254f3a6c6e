"""Issue 14 item 3: SIGHUP reloads what can be reloaded — the server certificate renewed while
a client keeps connecting — and names what needs a restart."""

from __future__ import annotations

import copy
import json
import signal
import socket
import ssl
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import trustme

from peers.gateway import GatewayProcess, gateway_config
from peers.net import free_port


class Connector(threading.Thread):
    """Opens a new TLS connection every 20 ms and asks ``/livez``; notes the serial number of
    the certificate each handshake saw, or the failure."""

    def __init__(self, port: int, context: ssl.SSLContext) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.context = context
        self.seen: list[str] = []
        self.failures: list[str] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                with (
                    socket.create_connection(("127.0.0.1", self.port), timeout=5) as raw,
                    self.context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
                ):
                    certificate = tls.getpeercert()
                    tls.sendall(b"GET /livez HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
                    answer = b""
                    while chunk := tls.recv(4096):
                        answer += chunk
                    assert answer.startswith(b"HTTP/1.1 200"), answer[:40]
                    assert certificate is not None
                    names = [str(rdn[0][1]) for rdn in certificate["subject"]]
                    self.seen.append(names[-1])  # trustme writes the common name last
            except (OSError, AssertionError) as exc:
                self.failures.append(repr(exc))
            time.sleep(0.02)


def wait_for(predicate: Any, timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def reload_lines(gateway: GatewayProcess, message: str) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for line in gateway.log().splitlines()
        if line.startswith("{") and json.loads(line)["msg"] == message
    ]


def test_a_certificate_renewed_by_sighup_while_a_client_keeps_connecting(
    tmp_path: Path,
) -> None:
    ca = trustme.CA()
    cert_file, key_file = tmp_path / "server.pem", tmp_path / "server.key"

    def install(name: str) -> str:
        leaf = ca.issue_cert("127.0.0.1", common_name=name)
        leaf.private_key_pem.write_to_path(str(key_file))
        leaf.cert_chain_pems[0].write_to_path(str(cert_file))
        return name

    old_name = install("first certificate")
    config = gateway_config(
        home_community_id="5.6.7.8",
        port=free_port(),
        upstreams={"src": {"protocol": "wado-rs", "base_urls": ["https://pacs.example.org/"]}},
        sources={"1.2.3": "src"},
    )
    config["server"]["tls"] = {"cert_file": str(cert_file), "key_file": str(key_file)}
    client = ssl.create_default_context()
    ca.configure_trust(client)
    with GatewayProcess(tmp_path, config, client_ssl=client) as gateway:
        connector = Connector(gateway.port, client)
        connector.start()
        try:
            wait_for(lambda: len(connector.seen) >= 5)

            # 1. a broken certificate file: the whole reload is refused, the old one serves on
            cert_file.write_text("not a certificate\n")
            gateway.send_signal(signal.SIGHUP)
            rejected = "configuration reload rejected; still serving generation 1"
            wait_for(lambda: reload_lines(gateway, rejected))
            before = len(connector.seen)
            wait_for(lambda: len(connector.seen) >= before + 5)

            # 2. the renewed certificate, and other changes: applied, or named for a restart
            new_name = install("renewed certificate")
            changed = copy.deepcopy(config)
            changed["server"]["log_level"] = "debug"
            changed["server"]["public_url"] = "https://gw.example.org/wado"
            changed["server"]["rate_limit"] = {"requests_per_s": 50}
            changed["server"]["port"] = gateway.port + 1  # needs a restart: not applied
            changed["server"]["workers"] = 2  # likewise
            gateway.write_config(changed)
            gateway.send_signal(signal.SIGHUP)
            wait_for(lambda: reload_lines(gateway, "configuration reloaded"))
            wait_for(lambda: new_name in connector.seen[-3:])
            time.sleep(0.3)
        finally:
            connector.done.set()
            connector.join(10)

        assert connector.failures == []
        assert old_name != new_name
        switched = connector.seen.index(new_name)
        assert set(connector.seen[:switched]) == {old_name}
        assert set(connector.seen[switched:]) == {new_name}  # never the old one again

        (reloaded,) = reload_lines(gateway, "configuration reloaded")
        applied = {"server.tls", "server.log_level", "server.public_url", "server.rate_limit"}
        assert applied <= set(reloaded["applied"])
        assert reloaded["needs_restart"] == ["server.port", "server.workers"]
        assert reload_lines(gateway, "TLS certificate reloaded")
        with urllib.request.urlopen(gateway.admin_url + "/admin/config", timeout=10) as answer:
            effective = json.loads(answer.read())["server"]
        assert effective["public_url"] == "https://gw.example.org/wado/"
        assert effective["log_level"] == "DEBUG"
        assert effective["port"] == gateway.port  # still the one it listens on
