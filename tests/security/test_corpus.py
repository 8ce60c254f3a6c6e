"""The adversarial corpus (issue 3 §5): hostile inputs against a real in-process gateway.

For every input: the status and problem ``type`` are asserted, the listeners on the forbidden
addresses (127.0.0.2 and ::1; the gateway may reach 127.0.0.1 only) have seen no connection,
the legitimate source has received no request for it, and the next legitimate request
through the same gateway succeeds byte for byte.

Requests are written on a raw socket so that what is sent is exactly what is listed (no
client-side normalisation of ``..`` or re-quoting).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from gateway.relay import addresses
from tests.security.harness import OWN, STUDY, Listener, Scripted, fetch, gateway

SCRIPTED_DNS = {"evil.test": ["127.0.0.2"], "rebind.test": ["127.0.0.2", "::1"]}


class ScriptedResolver(AbstractResolver):
    """DNS answers for the test names; real resolution for everything else."""

    def __init__(self) -> None:
        self._real = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host.rstrip(".") in SCRIPTED_DNS:
            return [
                ResolveResult(
                    hostname=host,
                    host=address,
                    port=port,
                    family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                    proto=0,
                    flags=socket.AI_NUMERICHOST,
                )
                for address in SCRIPTED_DNS[host.rstrip(".")]
            ]
        return await self._real.resolve(host, port, family)

    async def close(self) -> None:
        await self._real.close()


@pytest.fixture(autouse=True)
def scripted_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(addresses, "system_resolver", ScriptedResolver)


@dataclass
class World:
    up: Scripted  # the legitimate source and the redirector
    other: Scripted  # another registered upstream
    f4: Listener  # 127.0.0.2: forbidden
    f6: Listener  # ::1: forbidden

    def fill(self, text: str) -> str:
        return text.format(
            F4=self.f4.authority,
            F6=self.f6.authority,
            p4=self.f4.port,
            p6=self.f6.port,
            UP=f"127.0.0.1:{self.up.server.port if self.up.server else 0}",
            OTHER=f"127.0.0.1:{self.other.server.port if self.other.server else 0}",
            STUDY=STUDY,
        )


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with (
        Scripted() as up,
        Scripted() as other,
        Listener("127.0.0.2") as f4,
        Listener("::1") as f6,
    ):
        yield World(up=up, other=other, f4=f4, f6=f6)


@dataclass(frozen=True)
class Case:
    name: str
    status: int
    slug: str | None  # problem type after urn:mado-gateway:problem:, None for aiohttp's own 400
    request: str = ""  # raw request target (after {base}), or a redirect Location
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    method: str = "GET"


async def send_raw(world_gw: Any, case: Case, target: str) -> tuple[int, bytes]:
    host, port = "127.0.0.1", world_gw.server.port
    lines = [f"{case.method} {target} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in case.headers]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + case.body
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(data)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=10)
    except ConnectionResetError:
        answer = b""
    finally:
        writer.close()
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.") else 0
    return status, answer


def assert_problem(answer: bytes, case: Case) -> None:
    head, _, body = answer.partition(b"\r\n\r\n")
    if case.slug is None:
        return  # refused by aiohttp's parser: a bare 400 and a closed connection
    assert b"application/problem+json" in head
    assert f'"type":"urn:mado-gateway:problem:{case.slug}"'.encode() in body, body
    assert b"upstream detail" not in body


async def assert_untouched_and_serving(world: World, gw: Any, requests_before: int) -> None:
    await asyncio.sleep(0.02)
    assert world.f4.connections == 0
    assert world.f6.connections == 0
    assert len(world.up.seen) == requests_before
    status, _, body = await fetch(gw.url("ok"))
    assert (status, body) == (200, world.up.body)


# --- 1. Requests to the endpoint: identifiers, traversal, CRLF, sizes, methods ---------------

B = f"/wado/homeCommunityId/{OWN}/RetrieveLocationUID/1.2.3.1"
FILLER = "a" * 1000
REQUEST_CASES = [
    Case("uid-leading-zero", 400, "invalid-identifier", f"{B}/studies/1.2.03"),
    Case("uid-first-zero", 400, "invalid-identifier", f"{B}/studies/01.2"),
    Case("uid-empty-component", 400, "invalid-identifier", f"{B}/studies/1..2"),
    Case("uid-trailing-dot", 400, "invalid-identifier", f"{B}/studies/1.2."),
    Case("uid-leading-dot", 400, "invalid-identifier", f"{B}/studies/.1.2"),
    Case("uid-letters", 400, "invalid-identifier", f"{B}/studies/1.2a"),
    Case("uid-negative", 400, "invalid-identifier", f"{B}/studies/-1.2"),
    Case("uid-65-chars", 400, "invalid-identifier", f"{B}/studies/" + "1" * 65),
    Case("uid-huge", 400, "invalid-identifier", f"{B}/studies/" + "1." * 1000 + "1"),
    Case("uid-arabic-digits", 400, "invalid-identifier", f"{B}/studies/%D9%A1.%D9%A2"),
    Case("uid-fullwidth-digits", 400, "invalid-identifier", f"{B}/studies/%EF%BC%91.2"),
    Case("uid-nul", 400, "invalid-identifier", f"{B}/studies/1.2%00"),
    Case("series-not-uid", 400, "invalid-identifier", f"{B}/studies/1.2/series/x"),
    Case(
        "hcid-bad",
        400,
        "invalid-identifier",
        "/wado/homeCommunityId/1.02/RetrieveLocationUID/1.2.3.1/studies/1.2",
    ),
    Case(
        "rluid-bad",
        400,
        "invalid-identifier",
        f"/wado/homeCommunityId/{OWN}/RetrieveLocationUID/abc/studies/1.2",
    ),
    Case("dotdot", 400, "invalid-request", f"{B}/studies/1.2/../../etc/passwd"),
    Case("dotdot-encoded", 400, "invalid-request", f"{B}/studies/1.2/%2e%2e/admin"),
    Case("dotdot-encoded-upper", 400, "invalid-request", f"{B}/studies/1.2/%2E%2E/admin"),
    Case("dotdot-double-encoded", 400, "invalid-request", f"{B}/studies/1.2/%252e%252e/admin"),
    Case("encoded-slash", 400, "invalid-identifier", f"{B}/studies/1.2%2f..%2fadmin"),
    Case("encoded-backslash", 400, "invalid-identifier", f"{B}/studies/1.2%5c..%5cadmin"),
    Case("empty-segment", 400, "invalid-request", f"{B}/studies//1.2"),
    Case("crlf-in-query", 400, "invalid-request", f"{B}/studies/1.2?x=%0d%0aX-Injected:%201"),
    Case("lf-in-query", 400, "invalid-request", f"{B}/studies/1.2?accept=a%0aHost:evil"),
    Case("nul-in-query", 400, "invalid-request", f"{B}/studies/1.2?x=%00"),
    Case(
        "retrieveurl-twice", 400, "invalid-request", f"{B}/studies/1.2?retrieveurl=a&RetrieveURL=b"
    ),
    Case("url-too-long", 414, "uri-too-long", f"{B}/studies/1.2?x=" + "a" * 5000),
    Case("url-beyond-parser", 400, None, f"{B}/studies/1.2?x=" + "a" * 9000),
    Case(
        "headers-too-large",
        431,
        "headers-too-large",
        f"{B}/studies/{STUDY}",
        headers=tuple((f"X-Filler-{i}", FILLER) for i in range(20)),
    ),
    Case(
        "one-header-too-large",
        431,
        "headers-too-large",
        f"{B}/studies/{STUDY}",
        headers=(("X-Big", "b" * 20000),),
    ),
    Case(
        "header-beyond-parser",
        400,
        None,
        f"{B}/studies/{STUDY}",
        headers=(("X-Huge", "h" * 40000),),
    ),
    Case(
        "too-many-headers",
        431,
        "headers-too-large",
        f"{B}/studies/{STUDY}",
        headers=tuple((f"X-N-{i}", "1") for i in range(80)),
    ),
    Case(
        "body-on-get",
        413,
        "request-body-not-allowed",
        f"{B}/studies/{STUDY}",
        headers=(("Content-Length", "11"),),
        body=b"hello world",
    ),
    Case(
        "chunked-body-on-get",
        413,
        "request-body-not-allowed",
        f"{B}/studies/{STUDY}",
        headers=(("Transfer-Encoding", "chunked"),),
        body=b"5\r\nhello\r\n0\r\n\r\n",
    ),
    Case("post", 405, "method-not-allowed", f"{B}/studies/{STUDY}", method="POST"),
    Case("put", 405, "method-not-allowed", f"{B}/studies/{STUDY}", method="PUT"),
    Case("delete", 405, "method-not-allowed", f"{B}/studies/{STUDY}", method="DELETE"),
    Case("trace", 405, "method-not-allowed", f"{B}/studies/{STUDY}", method="TRACE"),
    Case(
        "cors-preflight-evil-origin",
        403,
        "cors-origin-refused",
        f"{B}/studies/{STUDY}",
        headers=(("Origin", "https://evil.example"), ("Access-Control-Request-Method", "GET")),
        method="OPTIONS",
    ),
    Case(
        "cors-preflight-bad-method",
        403,
        "cors-method-refused",
        f"{B}/studies/{STUDY}",
        headers=(
            ("Origin", "https://viewer.example.org"),
            ("Access-Control-Request-Method", "DELETE"),
        ),
        method="OPTIONS",
    ),
]


@pytest.mark.parametrize("case", REQUEST_CASES, ids=lambda c: c.name)
async def test_hostile_request(world: World, case: Case) -> None:
    server = {"cors": {"allowed_origins": ["https://viewer.example.org"]}}
    async with gateway({"ok": {"base_urls": [world.up.url + "ok/"]}}, server=server) as gw:
        before = len(world.up.seen)
        status, answer = await send_raw(gw, case, case.request)
        assert status == case.status, answer[:400]
        assert_problem(answer, case)
        await assert_untouched_and_serving(world, gw, before)


# --- 2. retrieveurl: spellings, userinfo, schemes, traversal, forbidden addresses -----------

RETRIEVE_CASES = [
    Case("ru-decimal", 403, "retrieve-url-refused", "http://2130706434:{p4}/"),
    Case("ru-hex", 403, "retrieve-url-refused", "http://0x7f000002:{p4}/"),
    Case("ru-hex-dotted", 403, "retrieve-url-refused", "http://0x7f.0.0.2:{p4}/"),
    Case("ru-octal", 403, "retrieve-url-refused", "http://0177.0.0.2:{p4}/"),
    Case("ru-octal-whole", 403, "retrieve-url-refused", "http://017700000002:{p4}/"),
    Case("ru-short", 403, "retrieve-url-refused", "http://127.2:{p4}/"),
    Case("ru-literal", 403, "retrieve-url-refused", "http://{F4}/"),
    Case("ru-v6-loopback", 403, "retrieve-url-refused", "http://{F6}/"),
    Case("ru-v4-mapped", 403, "retrieve-url-refused", "http://[::ffff:127.0.0.2]:{p4}/"),
    Case("ru-v4-mapped-hex", 403, "retrieve-url-refused", "http://[::ffff:7f00:2]:{p4}/"),
    Case("ru-localhost", 403, "retrieve-url-refused", "http://localhost:{p4}/"),
    Case("ru-no-scheme", 403, "retrieve-url-refused", "{F4}/dicom-web/"),
    Case("ru-uppercase-scheme", 403, "retrieve-url-refused", "HTTP://{F4}/"),
    Case("ru-userinfo-trusted", 403, "retrieve-url-refused", "http://{UP}@{F4}/"),
    Case("ru-userinfo-password", 403, "retrieve-url-refused", "http://user:pw@{UP}/ok/"),
    Case("ru-backslash-userinfo", 403, "retrieve-url-refused", "http://{UP}\\@{F4}/"),
    Case("ru-fragment-trick", 403, "retrieve-url-refused", "http://{F4}#@{UP}/"),
    Case("ru-query-trick", 403, "retrieve-url-refused", "http://{UP}/ok/?@{F4}/"),
    Case("ru-file", 403, "retrieve-url-refused", "file:///etc/passwd"),
    Case("ru-gopher", 403, "retrieve-url-refused", "gopher://{F4}/_GET"),
    Case("ru-ftp", 403, "retrieve-url-refused", "ftp://{F4}/"),
    Case("ru-dict", 403, "retrieve-url-refused", "dict://{F4}/"),
    Case("ru-ldap", 403, "retrieve-url-refused", "ldap://{F4}/"),
    Case("ru-javascript", 403, "retrieve-url-refused", "javascript:alert(1)"),
    Case("ru-data", 403, "retrieve-url-refused", "data:text/plain,x"),
    Case("ru-traversal", 403, "retrieve-url-refused", "http://{UP}/ok/../../admin/"),
    Case("ru-traversal-encoded", 403, "retrieve-url-refused", "http://{UP}/ok/%2e%2e/admin/"),
    Case("ru-traversal-double", 403, "retrieve-url-refused", "http://{UP}/ok/%252e%252e/admin/"),
    Case("ru-encoded-slash", 403, "retrieve-url-refused", "http://{UP}/ok%2f..%2fadmin/"),
    Case("ru-encoded-crlf", 403, "retrieve-url-refused", "http://{UP}/ok/%0d%0aX-Injected:1/"),
    Case(
        "ru-ideographic-dots", 403, "retrieve-url-refused", "http://127\u30020\u30020\u30022:{p4}/"
    ),
    Case("ru-metadata", 403, "retrieve-url-refused", "http://169.254.169.254/latest/meta-data/"),
    Case("ru-unregistered-name", 403, "retrieve-url-refused", "http://evil.test:{p4}/"),
    # On the allow-list, yet refused by the address policy: the allow-list is not enough.
    Case("ru-listed-literal", 502, "address-refused", "http://{F4}/"),
    Case("ru-listed-v6", 502, "address-refused", "http://{F6}/"),
    Case("ru-listed-mapped", 502, "address-refused", "http://[::ffff:127.0.0.2]:{p4}/"),
    Case("ru-listed-dns", 502, "address-refused", "http://evil.test:{p4}/"),
    Case("ru-listed-rebinding", 502, "address-refused", "http://rebind.test:{p4}/"),
    Case("ru-listed-metadata", 502, "address-refused", "http://169.254.169.254/"),
    Case("ru-listed-unspecified", 502, "address-refused", "http://0.0.0.0:{p4}/"),
]
LISTED = [
    "http://{F4}",
    "http://{F6}",
    "http://[::ffff:127.0.0.2]:{p4}",
    "http://evil.test:{p4}",
    "http://rebind.test:{p4}",
    "http://169.254.169.254",
    "http://0.0.0.0:{p4}",
]


@pytest.mark.parametrize("case", RETRIEVE_CASES, ids=lambda c: c.name)
async def test_hostile_retrieve_url(world: World, case: Case) -> None:
    listed = [world.up.origin]
    if case.name.startswith("ru-listed"):
        listed += [world.fill(origin) for origin in LISTED]
    async with gateway(
        {"ok": {"base_urls": [world.up.url + "ok/"]}},
        url_policy={"allowed_origins": listed},
    ) as gw:
        before = len(world.up.seen)
        value = quote(world.fill(case.request), safe="")
        target = f"{B}/studies/{STUDY}?retrieveurl={value}"
        status, answer = await send_raw(gw, case, target)
        assert status == case.status, answer[:400]
        assert_problem(answer, case)
        await assert_untouched_and_serving(world, gw, before)
        # the legitimate Retrieve URL is served too
        good = quote(world.up.url + "ok/", safe="")
        status, _, body = await fetch(gw.raw(f"{B}/studies/{STUDY}?retrieveurl={good}"))
        assert (status, body) == (200, world.up.body)
        if case.status == 502:
            assert "address-refused" in gw.events.kinds()
        else:
            assert "retrieve-url-refused" in gw.events.kinds()


# --- 3. Redirects: chains to forbidden or unregistered places, loops, downgrades ------------

REDIRECT_CASES = [
    Case("rd-unregistered-literal", 502, "origin", "http://{F4}/x"),
    Case("rd-unregistered-v6", 502, "origin", "http://{F6}/x"),
    Case("rd-301", 502, "origin", "http://{F4}/x", method="301"),
    Case("rd-303", 502, "origin", "http://{F4}/x", method="303"),
    Case("rd-307", 502, "origin", "http://{F4}/x", method="307"),
    Case("rd-308", 502, "origin", "http://{F4}/x", method="308"),
    Case("rd-mapped", 502, "origin", "http://[::ffff:127.0.0.2]:{p4}/x"),
    Case("rd-6to4", 502, "origin", "http://[2002:7f00:2::]:{p4}/x"),
    Case("rd-localhost", 502, "origin", "http://localhost:{p4}/x"),
    Case("rd-dns-name", 502, "origin", "http://evil.test:{p4}/x"),
    Case("rd-protocol-relative", 502, "origin", "//{F4}/x"),
    Case("rd-link-local", 502, "origin", "http://[fe80::1]:{p4}/x"),
    Case("rd-unspecified", 502, "origin", "http://0.0.0.0:{p4}/x"),
    Case("rd-metadata", 502, "origin", "http://169.254.169.254/latest/meta-data/"),
    Case("rd-decimal", 502, "ip-spelling", "http://2130706434:{p4}/x"),
    Case("rd-hex", 502, "ip-spelling", "http://0x7f000002:{p4}/x"),
    Case("rd-octal", 502, "ip-spelling", "http://0177.0.0.2:{p4}/x"),
    Case("rd-short", 502, "ip-spelling", "http://127.2:{p4}/x"),
    Case("rd-userinfo-trick", 502, "userinfo", "http://{OTHER}@{F4}/x"),
    Case("rd-userinfo-registered", 502, "userinfo", "http://user:pw@{OTHER}/ok/x"),
    Case("rd-backslash", 502, "malformed", "http://{OTHER}\\@{F4}/x"),
    Case("rd-space", 502, "malformed", "http://{F4} /x"),
    Case("rd-encoded-crlf", 502, "malformed", "http://{OTHER}/ok/%0d%0aSet-Cookie:%20x=1"),
    Case("rd-traversal", 502, "traversal", "/r/x/%2e%2e/%2e%2e/admin"),
    Case("rd-traversal-double", 502, "traversal", "/r/x/%252e%252e/admin"),
    Case("rd-file", 502, "scheme", "file:///etc/passwd"),
    Case("rd-gopher", 502, "scheme", "gopher://{F4}/_x"),
    Case("rd-ftp", 502, "scheme", "ftp://{F4}/"),
    Case("rd-javascript", 502, "scheme", "javascript:alert(1)"),
    Case("rd-data", 502, "scheme", "data:text/plain,x"),
    Case("rd-dict", 502, "scheme", "dict://{F4}/"),
    Case("rd-http-not-allowed", 502, "scheme", "http://{OTHER}/ok/x", method="strict"),
    Case("rd-no-location", 502, "no-location", "", method="none"),
    Case("rd-empty-location", 502, "no-location", ""),
    Case("rd-self-loop", 502, "loop", "/r/case/studies/{STUDY}"),
    Case("rd-two-step-loop", 502, "loop", "/r/step/x", method="loop2"),
    Case("rd-hop-limit", 502, "hop-limit", "/r/step/x", method="chain3"),
    # On the redirect allow-list, yet refused by the address policy.
    Case("rd-listed-literal", 502, "address", "http://{F4}/x", method="listed"),
    Case("rd-listed-v6", 502, "address", "http://{F6}/x", method="listed"),
    Case("rd-listed-mapped", 502, "address", "http://[::ffff:127.0.0.2]:{p4}/x", method="listed"),
    Case("rd-listed-dns", 502, "address", "http://evil.test:{p4}/x", method="listed"),
    Case("rd-listed-rebinding", 502, "address", "http://rebind.test:{p4}/x", method="listed"),
    Case("rd-listed-metadata", 502, "address", "http://169.254.169.254/x", method="listed"),
]
# The Case.method field of a redirect case selects a variant (status or set-up).
_STATUS = {"301": 301, "303": 303, "307": 307, "308": 308}


@pytest.mark.parametrize("case", REDIRECT_CASES, ids=lambda c: c.name)
async def test_hostile_redirect(world: World, case: Case) -> None:
    location = world.fill(case.request)
    variant = case.method
    status = _STATUS.get(variant, 302)
    world.up.script["case"] = (status, None if variant == "none" else location)
    redirects: dict[str, Any] = {"allow_http": variant != "strict", "max_hops": 2}
    if variant == "loop2":  # case -> step -> case
        world.up.script["case"] = (302, "/r/step/x")
        world.up.script["step"] = (302, f"/r/case/studies/{STUDY}")
    if variant == "chain3":  # case -> step -> third -> ok: three hops, two allowed
        world.up.script["case"] = (302, "/r/step/x")
        world.up.script["step"] = (302, "/r/third/x")
        world.up.script["third"] = (302, "/ok/x")
    if variant == "listed":
        redirects["allowed_origins"] = [world.fill(origin) for origin in LISTED]
    upstreams: dict[str, dict[str, Any]] = {
        "ok": {"base_urls": [world.up.url + "ok/"]},
        "redir": {"base_urls": [world.up.url + "r/case/"], "redirects": redirects},
        "other": {"base_urls": [world.other.url + "ok/"]},
    }
    async with gateway(upstreams) as gw:
        before = len(world.up.seen)
        answer_status, headers, body = await fetch(gw.url("redir"), Authorization="Bearer t")
        assert answer_status == case.status, body
        assert headers["Content-Type"] == "application/problem+json"
        assert b'"type":"urn:mado-gateway:problem:redirect-refused"' in body
        assert f"rule: {case.slug}".encode() in body
        assert b"upstream detail" not in body
        assert "Location" not in headers
        rule = str(case.slug)
        assert gw.metric("mado_gateway_redirects_total", upstream="redir", outcome=rule) == 1
        assert gw.events.kinds()[-1] == "redirect-refused"
        assert world.other.seen == []  # nothing reached the other upstream either
        hops = {"loop2": 2, "chain3": 3}.get(variant, 1)
        await assert_untouched_and_serving(world, gw, before + hops)


def test_the_corpus_has_at_least_80_inputs() -> None:
    assert len(REQUEST_CASES) + len(RETRIEVE_CASES) + len(REDIRECT_CASES) >= 80


_: Callable[..., object] = send_raw  # keep mypy aware of the helper's use in all sections
