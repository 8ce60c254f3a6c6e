"""Address checks for outbound connections: resolve once, filter, connect to what was checked.

Every upstream session's ``TCPConnector`` uses a :class:`PolicyResolver` built from that
upstream's :class:`~routing.model.AddressPolicy`. The connector connects to the addresses the
resolver returns and to nothing else, so the address that was checked is the address that
is dialled: a DNS answer that changes between a check and a connect (DNS rebinding) cannot
sneak in, because there is no second resolution. When every address of a name is refused,
resolving fails with :class:`AddressBlocked` and no connection is attempted.

aiohttp does not call the resolver for literal IP hosts, so :func:`check_literal` is applied
to every URL before it is requested (the forwarder does so for base URLs, ``retrieveurl``
and each redirect target).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from routing.model import AddressPolicy
from routing.urlpolicy import AddressClass, IpAddress, VettedUrl, refusing_class

__all__ = ["AddressBlocked", "PolicyResolver", "check_literal", "system_resolver"]


class AddressBlocked(OSError):
    """Every address of a host is refused by the policy; ``address_class`` says why."""

    def __init__(self, host: str, address: IpAddress, address_class: AddressClass) -> None:
        self.host = host
        self.address = address
        self.address_class = address_class
        super().__init__(f"{host} resolves only to refused addresses ({address_class})")


def system_resolver() -> AbstractResolver:
    """The resolver that does the real look-up (replaced in tests to script DNS answers)."""
    return DefaultResolver()


ResolverFactory = Callable[[], AbstractResolver]


class PolicyResolver(AbstractResolver):
    """Resolve with an inner resolver and keep only the addresses ``policy`` allows."""

    def __init__(self, policy: AddressPolicy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._inner = inner if inner is not None else system_resolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Allowed addresses of ``host``. Raises :class:`AddressBlocked` when none is left."""
        results = await self._inner.resolve(host, port, family)
        allowed = []
        first_refusal: tuple[IpAddress, AddressClass] | None = None
        for result in results:
            address = ipaddress.ip_address(result["host"].partition("%")[0])
            refused = refusing_class(address, self._policy)
            if refused is None:
                allowed.append(result)
            elif first_refusal is None:
                first_refusal = (address, refused)
        if not allowed:
            if first_refusal is None:
                raise OSError(f"{host} has no address")
            raise AddressBlocked(host, *first_refusal)
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def check_literal(target: VettedUrl, policy: AddressPolicy) -> None:
    """Refuse a URL whose host is a literal address the policy does not allow.

    Raises :class:`AddressBlocked`; a DNS name passes here and is checked by the resolver.
    """
    if target.address is None:
        return
    refused = refusing_class(target.address, policy)
    if refused is not None:
        raise AddressBlocked(target.host, target.address, refused)
