"""What ``check-config`` checks on this machine, beyond what the file itself says.

A file can be valid and still fail where it runs. Two checks, each a problem with the field
path that causes it:

* **folders the service user cannot write**: the state directory, every worker's audit
  journal, each audit file's folder and the XCA-I spool must be writable — or creatable, the
  nearest existing folder above them writable — by the user the service runs as (``--user``,
  by default the one running the check), judged by owner, group and mode bits as the kernel
  would (root passes everywhere but on a read-only file system);
* **upstreams the address policy refuses**: an upstream whose base URL host is, or resolves
  only to, addresses its ``address_policy`` refuses (loopback, private… without the flag)
  would fail every request with ``address-refused``. Names are resolved here; a name that
  does not resolve is not a problem (the upstream may be reachable only from production).
"""

from __future__ import annotations

import grp
import ipaddress
import os
import pwd
import socket
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gateway.service.config import Loaded, worker_journal
from routing.errors import ConfigProblem
from routing.urlpolicy import refusing_class
from routing.urls import parse_url

__all__ = ["ServiceUser", "machine_problems"]

_FLAGS = {
    "loopback": "allow_loopback",
    "private": "allow_private",
    "link-local": "allow_link_local",
}


@dataclass(frozen=True, slots=True)
class ServiceUser:
    """Who the service runs as: uid and every group it is in."""

    name: str
    uid: int
    gids: frozenset[int]

    @classmethod
    def current(cls) -> ServiceUser:
        uid = os.geteuid()
        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:
            name = str(uid)
        return cls(name=name, uid=uid, gids=frozenset({os.getegid(), *os.getgroups()}))

    @classmethod
    def named(cls, name: str) -> ServiceUser:
        """Raises ``KeyError`` for an unknown user."""
        entry = pwd.getpwnam(name)
        groups = {entry.pw_gid} | {g.gr_gid for g in grp.getgrall() if name in g.gr_mem}
        return cls(name=name, uid=entry.pw_uid, gids=frozenset(groups))

    def may_write(self, folder: Path) -> bool:
        """Whether this user may create files in the existing ``folder``: it may search every
        folder above it, and write and search the folder itself."""
        try:
            read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
            if read_only or not folder.is_dir():
                return False
            above = all(self._may(parent.stat(), write=False) for parent in folder.parents)
            return above and self._may(folder.stat(), write=True)
        except OSError:
            return False

    def _may(self, info: os.stat_result, *, write: bool) -> bool:
        if self.uid == 0:
            return True
        if info.st_uid == self.uid:
            bits = (stat.S_IWUSR if write else 0) | stat.S_IXUSR
        elif info.st_gid in self.gids:
            bits = (stat.S_IWGRP if write else 0) | stat.S_IXGRP
        else:
            bits = (stat.S_IWOTH if write else 0) | stat.S_IXOTH
        return info.st_mode & bits == bits


def machine_problems(
    loaded: Loaded, *, user: ServiceUser, workers: int | None = None
) -> list[ConfigProblem]:
    """Every problem of the module docstring, for ``workers`` workers (default: as configured)."""
    return [*_folders(loaded, user, workers), *_addresses(loaded)]


def _folders(loaded: Loaded, user: ServiceUser, workers: int | None) -> Iterator[ConfigProblem]:
    server, audit = loaded.server, loaded.audit
    count = workers or server.worker_count
    wanted: list[tuple[str, Path]] = [("server.state_directory", server.state_path)]
    wanted += [
        ("audit.journal.directory", Path(worker_journal(audit.journal.directory, index)))
        for index in range(count)
    ]
    for index, destination in enumerate(audit.destinations):
        if destination.file is not None:
            where = f"audit.destinations[{index}].file.path"
            wanted.append((where, Path(destination.file.path).parent))
    wanted.append(("server.xca.spool.directory", server.xca.spool.path))
    seen: set[Path] = set()
    for where, given in wanted:
        folder = Path(os.path.abspath(given))
        if folder in seen:
            continue
        seen.add(folder)
        existing = folder
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if user.may_write(existing):
            continue
        if existing == folder:
            reason = f"user {user.name} cannot write {folder}"
        else:
            reason = f"user {user.name} cannot create {folder} ({existing} is not writable)"
        yield ConfigProblem(path=where, reason=reason)


def _addresses(loaded: Loaded) -> Iterator[ConfigProblem]:
    for name, upstream in loaded.config.upstreams.items():
        policy = upstream.address_policy
        for index, url in enumerate(upstream.base_urls):
            try:
                host = parse_url(url).host
            except ValueError:
                continue
            addresses = _resolve(host)
            if not addresses:
                continue
            refused = [(a, refusing_class(a, policy)) for a in addresses]
            if all(cls is not None for _, cls in refused):
                address, cls = refused[0]
                flag = _FLAGS.get(str(cls), "allowed_networks")
                yield ConfigProblem(
                    path=f"upstreams.{name}.base_urls[{index}]",
                    reason=(
                        f"{host} is {address} ({cls}), which the address policy refuses: "
                        f"every request would fail with address-refused (set {flag} in "
                        f"address_policy, the upstream's or the top-level one)"
                    ),
                )


def _resolve(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    found: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for info in infos:
        try:
            address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        except ValueError:
            continue
        if address not in found:
            found.append(address)
    return found
