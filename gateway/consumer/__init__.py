"""The MADO consumer helper: from a manifest to the DICOM instances it names.

Read in this order: :mod:`~gateway.consumer.urls` (a retrieval plan becomes XC-WADO or
direct WADO-RS URLs), :mod:`~gateway.consumer.fetch` (the URLs are retrieved and each part
stored or handed on, without holding a study), :mod:`~gateway.consumer.cli` (``mado-gateway
fetch``) and :mod:`~gateway.consumer.endpoint` (``POST /mado/retrieve``). Plans themselves
come from :mod:`mado.plan`.

Errors::

    ConsumerError
     └── RetrieveFailed   a retrieval that did not complete (HTTP status, network, truncation)

What the manifest itself provokes — unreadable, too complex, nothing selected, a series that
cannot be addressed — is a :class:`mado.errors.ManifestError` (the gateway answers those 4xx).
"""

from __future__ import annotations

__all__ = ["ConsumerError", "RetrieveFailed"]


class ConsumerError(Exception):
    """Base of the consumer helper's errors; the message is one line for a person."""


class RetrieveFailed(ConsumerError):
    """``problem``: the slug of the problem document the answer carried (the part of its
    ``type`` after ``urn:mado-gateway:problem:``), when it carried one."""

    def __init__(
        self, url: str, reason: str, status: int | None = None, problem: str | None = None
    ) -> None:
        self.url = url
        self.reason = reason
        self.status = status
        self.problem = problem
        super().__init__(f"{reason} ({url})")
