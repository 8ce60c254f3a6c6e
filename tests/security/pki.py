"""Certificates made per test (trustme): two CAs (servers', clients') and their leaves."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trustme
from cryptography import x509

from peers.gateway import gateway_config
from peers.net import free_port

__all__ = ["STUDY", "Pki", "responding_over_tls"]

STUDY = "1.2.826.0.1.3680043.10.99.7"  # any study UID: the source answers every path


@dataclass
class Pki:
    folder: Path
    server_ca: trustme.CA
    client_ca: trustme.CA

    def write_ca(self, ca: trustme.CA, name: str) -> str:
        path = self.folder / f"{name}.pem"
        ca.cert_pem.write_to_path(str(path))
        return str(path)

    def leaf(self, ca: trustme.CA, name: str, *identities: str) -> tuple[str, str, str]:
        """(cert file, key file, RFC 4514 subject) of a new leaf certificate."""
        leaf = ca.issue_cert(*(identities or ("127.0.0.1",)), common_name=name)
        cert, key = self.folder / f"{name}.crt", self.folder / f"{name}.key"
        leaf.cert_chain_pems[0].write_to_path(str(cert))
        leaf.private_key_pem.write_to_path(str(key))
        subject = x509.load_pem_x509_certificate(cert.read_bytes()).subject.rfc4514_string()
        return str(cert), str(key), subject

    def client_context(self, cert: tuple[str, str, str] | None) -> ssl.SSLContext:
        """A client that trusts the server CA and presents ``cert`` (None: no certificate)."""
        context = ssl.create_default_context(cafile=self.write_ca(self.server_ca, "server-ca"))
        if cert is not None:
            context.load_cert_chain(cert[0], cert[1])
        return context


def responding_over_tls(
    pki: Pki, source: str, server_cert: tuple[str, str, str], **tls: Any
) -> dict[str, Any]:
    """A responding gateway (community 1.1.1, Retrieve Location 1.2.3.4 → ``source``) that
    serves HTTPS with ``server_cert`` and verifies client certificates of the client CA;
    ``tls`` adds or replaces keys of its ``server.tls`` section."""
    config = gateway_config(
        home_community_id="1.1.1",
        port=free_port(),
        upstreams={"source": {"protocol": "wado-rs", "base_urls": [source]}},
        sources={"1.2.3.4": "source"},
    )
    config["server"]["tls"] = {
        "cert_file": server_cert[0],
        "key_file": server_cert[1],
        "client_ca_file": pki.write_ca(pki.client_ca, "client-ca"),
        **tls,
    }
    return config
