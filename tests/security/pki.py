"""Certificates made per test (trustme): two CAs (servers', clients') and their leaves."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography import x509

__all__ = ["STUDY", "Pki"]

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
