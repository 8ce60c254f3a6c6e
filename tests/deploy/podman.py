"""Podman as the tests drive it: every image, container and pod of a test session lives in
storage under the session's temporary folder, never in the machine's own.

This machine has no Docker engine and no registry, so the base image is made here
(:func:`make_base_image`: ``debootstrap --variant=minbase bookworm`` from the Debian mirror
apt is configured with, imported with ``podman import``) and the wheels come from ``pip
download`` (:func:`download_wheels`). Two quirks of the machine, both handled by the
``containers.conf`` written here (``CONTAINERS_CONF``, with ``CONTAINERS_STORAGE_CONF`` for
the storage): crun refuses its cgroup setup, so the runtime is runc; and runc cannot set
podman's default resource limits (``error setting rlimit type 6/7: operation not
permitted``), so ``default_ulimits`` are set explicitly, at or below the test process's own.

Containers use the host's network (``--network=host``): they reach Orthanc on 127.0.0.1 and
serve there, and no traffic leaves the loopback interface.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.deploy.commands import argv

__all__ = [
    "CommandFailed",
    "Podman",
    "debian_mirror",
    "download_wheels",
    "make_base_image",
]

REPO = Path(__file__).resolve().parents[2]
BASE_IMAGE = "localhost/mado-base:bookworm"
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class CommandFailed(AssertionError):
    """A command of a test failed; the message holds its arguments and output."""


def run(
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    timeout_s: float = 300,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv``; :class:`CommandFailed` with its output unless it exits 0."""
    done = subprocess.run(  # noqa: PLW1510 — the status is checked below, with the output
        argv, env=env, capture_output=True, text=True, timeout=timeout_s, cwd=cwd
    )
    if done.returncode != 0:
        raise CommandFailed(
            f"{' '.join(argv)} exited {done.returncode}\n{done.stdout[-4000:]}"
            f"\n{done.stderr[-4000:]}"
        )
    return done


def debian_mirror() -> str:
    """The first ``deb`` URI apt is configured with (deb822 ``.sources`` files first, then the
    one-line ``sources.list``), where Debian's main archive is expected to be."""
    folder = Path("/etc/apt/sources.list.d")
    for path in sorted(folder.glob("*.sources")) if folder.is_dir() else []:
        for stanza in path.read_text().split("\n\n"):
            fields = dict(
                line.split(":", 1)
                for line in stanza.splitlines()
                if ":" in line and not line.startswith(("#", " "))
            )
            types = fields.get("Types", "").split()
            suites = fields.get("Suites", "").split()
            if "deb" in types and "bookworm" in suites and "URIs" in fields:
                return fields["URIs"].split()[0]
    lists = [Path("/etc/apt/sources.list"), *sorted(folder.glob("*.list"))]
    for path in lists:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            words = [w for w in line.split() if not w.startswith("[")]
            if len(words) >= 3 and words[0] == "deb" and words[2] == "bookworm":
                return words[1]
    raise RuntimeError("apt has no Debian bookworm source to debootstrap from")


@dataclass(frozen=True, slots=True)
class Podman:
    """``podman`` with this session's own configuration and storage under ``folder``."""

    folder: Path

    @classmethod
    def create(cls, folder: Path) -> Podman:
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("storage", "run", "tmp"):
            (folder / name).mkdir(exist_ok=True)
        nofile_soft, nofile_hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        nproc_soft, nproc_hard = resource.getrlimit(resource.RLIMIT_NPROC)
        nofile = min(nofile_soft, nofile_hard, 16384)
        nproc = min(nproc_soft, nproc_hard, 8192)
        (folder / "containers.conf").write_text(
            "[containers]\n"
            f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
            "[engine]\n"
            'runtime = "runc"\n'
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "file"\n'
            f'tmp_dir = "{folder / "tmp"}"\n'
        )
        (folder / "storage.conf").write_text(
            "[storage]\n"
            'driver = "overlay"\n'
            f'graphroot = "{folder / "storage"}"\n'
            f'runroot = "{folder / "run"}"\n'
        )
        return cls(folder)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "CONTAINERS_CONF": str(self.folder / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(self.folder / "storage.conf"),
        }

    def __call__(
        self, *args: str, timeout_s: float = 300, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run(["podman", *args], env=self.env, timeout_s=timeout_s, cwd=cwd)

    def attempt(self, *args: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
        """Like calling it, but a failure is returned, not raised."""
        return subprocess.run(  # noqa: PLW1510 — the caller reads the status
            ["podman", *args], env=self.env, capture_output=True, text=True, timeout=timeout_s
        )

    def reset(self) -> None:
        """Remove every container, pod and image of this storage, and unmount it."""
        self.attempt("system", "reset", "--force", timeout_s=120)


def make_base_image(podman: Podman, folder: Path) -> str:
    """A Debian bookworm (minbase) with python3 and venv, as ``localhost/mado-base:bookworm``."""
    rootfs = folder / "rootfs"
    run(
        [
            "debootstrap",
            "--variant=minbase",
            "--include=python3-venv",
            "bookworm",
            str(rootfs),
            debian_mirror(),
        ],
        timeout_s=600,
    )
    shutil.rmtree(rootfs / "var/cache/apt/archives", ignore_errors=True)
    with subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE) as tar:
        subprocess.run(
            ["podman", "import", "--change", f"ENV PATH={_PATH}", "-", BASE_IMAGE],
            stdin=tar.stdout,
            env=podman.env,
            check=True,
            capture_output=True,
            timeout=300,
        )
    shutil.rmtree(rootfs)
    return BASE_IMAGE


def download_wheels(python: Path, folder: Path) -> Path:
    """``pip download`` of the gateway's dependencies and its build backend into ``folder``."""
    words = argv("download", {"wheels": str(folder), ".": str(REPO)})
    run([str(python), "-m", *words], timeout_s=300)
    return folder


def wait_until(predicate: object, *, timeout_s: float, what: str) -> None:
    """Poll ``predicate()`` until it is true."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise TimeoutError(f"{what} within {timeout_s} s")
