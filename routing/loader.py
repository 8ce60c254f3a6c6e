"""The routing sections of a configuration document to :class:`~routing.model.Config`.

Every problem is collected, not just the first, and each names its field path
(``upstreams.pacs-a.base_urls[1]``) and the reason, so an operator fixes a file in one pass.
Unknown fields are problems too: a misspelt ``read_idle_s`` must not silently fall back to
the default. Sections owned by other packages (``server``, ``audit``) are passed over here and
read by their owners with the same :class:`~routing.fields.Fields` reader.
"""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

from routing.errors import ConfigError, ConfigProblem, InvalidIdentifier
from routing.fields import Fields, first_line, load_document
from routing.ids import HomeCommunityId, Oid
from routing.model import (
    AddressPolicy,
    Config,
    Identity,
    Limits,
    Protocol,
    RedirectPolicy,
    Timeouts,
    TlsProfile,
    Upstream,
    UrlPolicy,
    origin_of,
)
from routing.urlpolicy import UrlRefused, vet_url

__all__ = ["load_config", "parse_config", "parse_base_url"]

T = TypeVar("T")
_ROUTE_PROTOCOLS = {
    "communities": frozenset({Protocol.XC_WADO}),
    "sources": frozenset({Protocol.WADO_RS}),
}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


def load_config(path: str | os.PathLike[str]) -> Config:
    """Load and validate a configuration file. Raises :class:`ConfigError` with every problem."""
    return parse_config(load_document(path), source=str(path))


def parse_config(
    document: Mapping[str, Any],
    *,
    source: str = "configuration",
    foreign_sections: Collection[str] = frozenset({"server", "audit", "logging"}),
) -> Config:
    """Validate a parsed document. Raises :class:`ConfigError` with every problem found."""
    problems: list[ConfigProblem] = []
    root = Fields(document, "", problems)
    identity = _identity(root.section("self"))
    declared = {name for name, _, _ in root.entries("upstreams")}
    address_policy = _address_policy(root.section("address_policy"), AddressPolicy())
    upstreams = _upstreams(root, address_policy)
    communities = _routes(root, "communities", HomeCommunityId, upstreams, declared)
    sources = _routes(root, "sources", Oid, upstreams, declared)
    url_policy = _url_policy(root.section("url_policy"))
    location_aliases = _location_aliases(root)
    root.finish(also_known=foreign_sections)

    if identity is not None and identity.home_community_id in communities:
        problems.append(
            ConfigProblem(
                path=f"communities.{identity.home_community_id}",
                reason="is this gateway's own community (self.home_community_id)",
            )
        )
    if problems or identity is None:
        raise ConfigError(problems, source)
    return Config(
        identity=identity,
        upstreams=upstreams,
        communities=communities,
        sources=sources,
        url_policy=url_policy,
        address_policy=address_policy,
        location_aliases=location_aliases,
    )


def parse_base_url(value: str) -> str:
    """Validate an absolute http(s) base URL and return it ending in ``/``.

    Raises ``ValueError`` with a reason fit for an operator.
    """
    parts = urlsplit(value)
    if parts.scheme.lower() not in {"http", "https"}:
        raise ValueError("must be an absolute http:// or https:// URL")
    if not parts.hostname:
        raise ValueError("has no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry credentials")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or fragment")
    try:
        origin_of(value)
    except ValueError:
        raise ValueError("has an invalid port") from None
    return value if value.endswith("/") else value + "/"


def _identity(fields: Fields) -> Identity | None:
    if not fields.valid:
        fields.problem("", "is required")
        fields.finish()
        return None
    hcid = _identifier(fields, "home_community_id", HomeCommunityId)
    audit_source_id = fields.text("audit_source_id", required=True)
    site = fields.text("enterprise_site_id")
    fields.finish()
    if hcid is None or audit_source_id is None:
        return None
    return Identity(
        home_community_id=hcid, audit_source_id=audit_source_id, enterprise_site_id=site
    )


def _upstreams(root: Fields, address_policy: AddressPolicy) -> dict[str, Upstream]:
    upstreams: dict[str, Upstream] = {}
    entries = list(root.entries("upstreams"))
    if not entries:
        root.problem("upstreams", "must name at least one upstream")
    for name, path, value in entries:
        fields = Fields(value, path, root.problems)
        if _NAME.fullmatch(name) is None:
            fields.problem("", "name must be letters, digits, '.', '_' or '-' (at most 63)")
        upstream = _upstream(name, fields, address_policy)
        if upstream is not None:
            upstreams[name] = upstream
    return upstreams


def _upstream(name: str, fields: Fields, address_policy: AddressPolicy) -> Upstream | None:
    protocol_text = fields.text("protocol", required=True)
    protocol = None
    if protocol_text is not None:
        try:
            protocol = Protocol(protocol_text)
        except ValueError:
            choices = ", ".join(p.value for p in Protocol)
            fields.problem("protocol", f"must be one of {choices}")
    base_urls = []
    for path, url in fields.strings("base_urls"):
        try:
            base_urls.append(parse_base_url(url))
            vet_url(url, allow_http=True)
        except ValueError as exc:
            fields.problems.append(ConfigProblem(path=path, reason=f"{url!r} {exc}"))
        except UrlRefused as refusal:  # the same checks every outbound URL passes
            reason = f"{url!r} is refused by the URL policy ({refusal.detail})"
            fields.problems.append(ConfigProblem(path=path, reason=reason))
    if not fields.has("base_urls"):
        fields.problem("base_urls", "is required")
    timeouts = _timeouts(fields.section("timeouts"))
    limits = _limits(fields.section("limits"))
    tls = _tls(fields.section("tls"))
    redirects = _redirects(fields.section("redirects"))
    # An upstream's own address_policy replaces the top-level one as a whole (no merging:
    # what an upstream may reach is read in one place).
    addresses = _address_policy(fields.section("address_policy"), address_policy)
    forward_authorization = fields.flag("forward_authorization", default=False)
    fields.finish()
    if protocol is None or not base_urls:
        return None
    return Upstream(
        name=name,
        protocol=protocol,
        base_urls=tuple(base_urls),
        tls=tls,
        timeouts=timeouts,
        limits=limits,
        redirects=redirects,
        address_policy=addresses,
        forward_authorization=forward_authorization,
    )


def _timeouts(fields: Fields) -> Timeouts:
    default = Timeouts()
    value = Timeouts(
        connect_s=fields.number("connect_s", default.connect_s),
        read_idle_s=fields.number("read_idle_s", default.read_idle_s),
    )
    if fields.has("total_s"):
        fields.raw("total_s")
        fields.problem("total_s", "is not supported: streams have idle timeouts, never a deadline")
    fields.finish()
    return value


def _limits(fields: Fields) -> Limits:
    default = Limits()
    value = Limits(
        max_connections=fields.integer("max_connections", default.max_connections),
        keepalive_s=fields.number("keepalive_s", default.keepalive_s),
    )
    fields.finish()
    return value


def _tls(fields: Fields) -> TlsProfile:
    files = {}
    for key in ("ca_file", "cert_file", "key_file"):
        path = fields.text(key)
        if path is not None and not os.path.isfile(path):
            fields.problem(key, f"file {path!r} does not exist")
        files[key] = path
    if (files["cert_file"] is None) != (files["key_file"] is None):
        fields.problem("", "cert_file and key_file go together (mutual TLS needs both)")
    elif not [p for p in fields.problems if p.path.startswith(fields.path)]:
        _check_tls_files(fields, files)
    fields.finish()
    return TlsProfile(**files)


def _check_tls_files(fields: Fields, files: Mapping[str, str | None]) -> None:
    """Load the PEM files once, so a broken one is a configuration problem, not a 502 later."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if files["ca_file"] is not None:
        try:
            context.load_verify_locations(cafile=files["ca_file"])
        except (ssl.SSLError, OSError, ValueError) as exc:
            fields.problem("ca_file", f"is not a usable PEM CA bundle ({first_line(exc)})")
    if files["cert_file"] is not None and files["key_file"] is not None:
        try:
            context.load_cert_chain(files["cert_file"], files["key_file"])
        except (ssl.SSLError, OSError, ValueError) as exc:
            fields.problem("cert_file", f"certificate and key do not load ({first_line(exc)})")


def _redirects(fields: Fields) -> RedirectPolicy:
    default = RedirectPolicy()
    max_hops = fields.integer("max_hops", default.max_hops, minimum=0)
    if max_hops > 10:
        fields.problem("max_hops", "must be at most 10")
        max_hops = default.max_hops
    allow_http = fields.flag("allow_http", default=default.allow_http)
    origins = set()
    for path, url in fields.strings("allowed_origins"):
        try:
            origins.add(origin_of(parse_base_url(url)))
        except ValueError as exc:
            fields.problems.append(ConfigProblem(path=path, reason=f"{url!r} {exc}"))
    fields.finish()
    return RedirectPolicy(
        max_hops=max_hops, allow_http=allow_http, allowed_origins=frozenset(origins)
    )


def _address_policy(fields: Fields, default: AddressPolicy) -> AddressPolicy:
    """Read an ``address_policy`` section; an absent section is ``default``."""
    if not fields.valid:
        return default
    networks = []
    for path, text in fields.strings("allowed_networks"):
        try:
            networks.append(ipaddress.ip_network(text, strict=True))
        except ValueError as exc:
            reason = f"{text!r} is not a CIDR network such as 10.1.0.0/16 ({exc})"
            fields.problems.append(ConfigProblem(path=path, reason=reason))
    policy = AddressPolicy(
        allow_loopback=fields.flag("allow_loopback", default=False),
        allow_private=fields.flag("allow_private", default=False),
        allow_link_local=fields.flag("allow_link_local", default=False),
        allowed_networks=tuple(networks),
    )
    fields.finish()
    return policy


def _routes(
    root: Fields,
    key: str,
    id_type: Callable[[str], T],
    upstreams: Mapping[str, Upstream],
    declared: Collection[str],
) -> dict[T, str]:
    """Read ``communities`` or ``sources``: identifier -> name of an upstream that can serve it."""
    allowed = _ROUTE_PROTOCOLS[key]
    routes: dict[T, str] = {}
    for raw_id, path, target in root.entries(key):
        try:
            identifier = id_type(raw_id)
        except InvalidIdentifier as exc:
            root.problems.append(ConfigProblem(path=path, reason=f"key is an {exc}"))
            continue
        if not isinstance(target, str):
            root.problems.append(ConfigProblem(path=path, reason="must name an upstream"))
            continue
        if identifier in routes:
            root.problems.append(
                ConfigProblem(path=path, reason=f"duplicates {identifier} (another spelling)")
            )
            continue
        upstream = upstreams.get(target)
        if upstream is None:
            # Only say "unknown" when the upstream is truly absent, not merely invalid.
            if target not in declared:
                root.problems.append(
                    ConfigProblem(path=path, reason=f"unknown upstream {target!r}")
                )
            continue
        if upstream.protocol not in allowed:
            needed = " or ".join(sorted(allowed))
            reason = f"upstream {target!r} speaks {upstream.protocol}; {key} need {needed}"
            root.problems.append(ConfigProblem(path=path, reason=reason))
            continue
        routes[identifier] = target
    return routes


def _url_policy(fields: Fields) -> UrlPolicy:
    origins = set()
    for path, url in fields.strings("allowed_origins"):
        try:
            origins.add(origin_of(parse_base_url(url)))
        except ValueError as exc:
            fields.problems.append(ConfigProblem(path=path, reason=f"{url!r} {exc}"))
    allow_upstreams = fields.flag("allow_upstream_origins", default=False)
    fields.finish()
    return UrlPolicy(allowed_origins=frozenset(origins), allow_upstream_origins=allow_upstreams)


def _identifier(fields: Fields, key: str, id_type: Callable[[str], T]) -> T | None:
    text = fields.text(key, required=True)
    if text is None:
        return None
    try:
        return id_type(text)
    except InvalidIdentifier as exc:
        fields.problem(key, str(exc))
        return None


_MAX_ALIAS_LENGTH = 64


def _location_aliases(root: Fields) -> dict[str, Oid]:
    """Read ``location_aliases``: an opaque location identifier, as manifests write it
    (``ACME``), -> the Retrieve Location UID it stands for. Used only where a manifest is
    turned into RAD-160 requests; the RAD-160 path itself stays OID-only."""
    aliases: dict[str, Oid] = {}
    for name, path, target in root.entries("location_aliases"):
        identifier = name.strip()
        if not identifier or len(identifier) > _MAX_ALIAS_LENGTH:
            reason = f"identifier must be 1 to {_MAX_ALIAS_LENGTH} characters"
            root.problems.append(ConfigProblem(path=path, reason=reason))
            continue
        if not identifier.isprintable():
            reason = "identifier has control characters"
            root.problems.append(ConfigProblem(path=path, reason=reason))
            continue
        if Oid.is_valid(identifier):
            reason = "identifier is an OID, which routes as it is: aliases are for the others"
            root.problems.append(ConfigProblem(path=path, reason=reason))
            continue
        if identifier in aliases:
            reason = f"duplicates {identifier!r} (another spelling)"
            root.problems.append(ConfigProblem(path=path, reason=reason))
            continue
        try:
            if not isinstance(target, str):
                raise InvalidIdentifier("OID", repr(target), "must be a string")
            aliases[identifier] = Oid(target)
        except InvalidIdentifier as exc:
            reason = f"must be the Retrieve Location UID (an OID) it stands for: {exc.reason}"
            root.problems.append(ConfigProblem(path=path, reason=reason))
    return aliases
