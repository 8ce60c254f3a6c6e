"""The bounded disk spool of XCA-I answers (gateway.protocols.xca.spool): budgets per request
and per process, files that never outlive their request, nothing left on disk."""

from __future__ import annotations

import asyncio
import errno
import os
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.protocols.xca.spool import Spool, SpoolBudget, SpoolFile, SpoolFull


def spool_fds(directory: Path) -> list[int]:
    """Descriptors of this process open on a file of ``directory`` (Linux /proc)."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except FileNotFoundError:
            continue  # the descriptor listdir itself used
        if target.startswith(f"{directory.resolve()}/"):
            found.append(int(name))
    return found


def make(tmp_path: Path, max_bytes: int = 10_000, max_request_bytes: int = 1_000) -> Spool:
    return Spool(tmp_path / "spool", max_bytes=max_bytes, max_request_bytes=max_request_bytes)


def test_the_directory_is_made_private_and_files_have_no_name(tmp_path: Path) -> None:
    spool = make(tmp_path)
    assert stat.S_IMODE(spool.directory.stat().st_mode) & 0o077 == 0
    with spool.request() as budget:
        spooled = budget.file()
        spooled.write(b"DICM")
        assert os.listdir(spool.directory) == []  # only the descriptor keeps the bytes
        (fd,) = spool_fds(spool.directory)
        assert stat.S_IMODE(os.fstat(fd).st_mode) == 0o600
    assert spool_fds(spool.directory) == []


def test_without_unnamed_files_the_name_is_unlinked_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(os, "O_TMPFILE", raising=False)
    spool = make(tmp_path)
    with spool.request() as budget:
        spooled = budget.file()
        spooled.write(b"x" * 100)
        assert os.listdir(spool.directory) == []
        (fd,) = spool_fds(spool.directory)
        assert os.readlink(f"/proc/self/fd/{fd}").endswith(" (deleted)")
        assert stat.S_IMODE(os.fstat(fd).st_mode) == 0o600
        spooled.finish()
        assert b"".join(spooled.chunks()) == b"x" * 100
    assert spool_fds(spool.directory) == []


def test_the_request_budget_holds_over_many_files(tmp_path: Path) -> None:
    spool = make(tmp_path, max_bytes=10_000, max_request_bytes=1_000)
    with spool.request() as budget:
        files = [budget.file() for _ in range(10)]
        for spooled in files:
            spooled.write(b"a" * 60)
            spooled.write(b"b" * 40)
        assert budget.used_bytes == spool.used_bytes == 1_000
        last = budget.file()
        with pytest.raises(SpoolFull) as caught:
            last.write(b"c")
        assert (caught.value.reason, caught.value.limit) == ("request", 1_000)
        assert last.discarded and last.size == 0
        assert budget.used_bytes == 1_000
        files[0].discard()
        assert budget.used_bytes == spool.used_bytes == 900
        budget.file().write(b"d" * 100)  # what a discarded file held is free again
        assert budget.used_bytes == 1_000
    assert spool.used_bytes == 0


def test_the_process_budget_holds_across_requests(tmp_path: Path) -> None:
    spool = make(tmp_path, max_bytes=1_500, max_request_bytes=1_000)
    with spool.request() as first, spool.request() as second:
        first.file().write(b"a" * 1_000)
        keep = second.file()
        keep.write(b"b" * 500)
        grow = second.file()
        with pytest.raises(SpoolFull) as caught:
            grow.write(b"c")
        assert caught.value.reason == "process"
        assert (first.used_bytes, second.used_bytes, spool.used_bytes) == (1_000, 500, 1_500)
        assert grow.discarded and not keep.discarded
    assert spool.used_bytes == 0


def test_a_write_past_a_budget_writes_nothing_of_itself(tmp_path: Path) -> None:
    spool = make(tmp_path, max_bytes=100, max_request_bytes=100)
    with spool.request() as budget:
        spooled = budget.file()
        spooled.write(b"x" * 60)
        with pytest.raises(SpoolFull):
            spooled.write(b"y" * 41)
        assert spool.used_bytes == 0  # the file was discarded with its 60 bytes
        with pytest.raises(ValueError, match="no more writes"):
            spooled.write(b"z")


def test_every_file_is_released_when_the_request_fails(tmp_path: Path) -> None:
    spool = make(tmp_path)
    opened: list[SpoolBudget] = []

    class Failed(Exception):
        pass

    def answer() -> None:
        with spool.request() as budget:
            opened.append(budget)
            for _ in range(5):
                budget.file().write(b"x" * 100)
            assert len(spool_fds(spool.directory)) == 5
            raise Failed

    with pytest.raises(Failed):
        answer()
    assert spool.used_bytes == 0
    assert spool_fds(spool.directory) == []
    assert os.listdir(spool.directory) == []
    with pytest.raises(ValueError, match="closed"):
        opened[0].file()


async def test_every_file_is_released_when_the_request_is_cancelled(tmp_path: Path) -> None:
    spool = make(tmp_path)
    spooled = asyncio.Event()

    async def answer() -> None:
        with spool.request() as budget:
            budget.file().write(b"x" * 300)
            spooled.set()
            await asyncio.Event().wait()  # the client went away while we waited

    task = asyncio.create_task(answer())
    await spooled.wait()
    assert spool.used_bytes == 300
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert spool.used_bytes == 0
    assert spool_fds(spool.directory) == []


def test_concurrent_requests_never_pass_the_process_budget(tmp_path: Path) -> None:
    spool = make(tmp_path, max_bytes=5_000, max_request_bytes=2_000)
    seen: list[int] = []
    refused: list[str] = []
    failures: list[BaseException] = []
    start = threading.Barrier(8)

    def one_request(seed: int) -> None:
        try:
            spool_one_request(seed)
        except BaseException as exc:  # a thread's failure is reported by the test
            failures.append(exc)

    def spool_one_request(seed: int) -> None:
        start.wait()
        with spool.request() as budget:
            for index in range(40):
                spooled = budget.file()
                try:
                    spooled.write(bytes([seed]) * (10 + (seed * 7 + index * 13) % 90))
                except SpoolFull as full:
                    refused.append(full.reason)
                    continue
                seen.append(spool.used_bytes)
                assert budget.used_bytes <= 2_000
                spooled.finish()
                assert set(b"".join(spooled.chunks(17))) == {seed}

    threads = [threading.Thread(target=one_request, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert seen and max(seen) <= 5_000
    assert refused  # 8 requests wanting about 2,000 bytes each met the 5,000-byte ceiling
    assert spool.used_bytes == 0
    assert spool_fds(spool.directory) == []


def test_a_file_reads_back_in_blocks_for_every_reader(tmp_path: Path) -> None:
    spool = make(tmp_path, max_request_bytes=10_000)
    body = bytes(range(256)) * 30
    with spool.request() as budget:
        spooled = budget.file()
        with pytest.raises(ValueError, match="not finished"):
            spooled.chunks()
        for start in range(0, len(body), 1000):
            spooled.write(body[start : start + 1000])
        spooled.finish()
        assert spooled.size == len(body)
        with pytest.raises(ValueError, match="no more writes"):
            spooled.write(b"late")
        first, second = spooled.chunks(4096), spooled.chunks(1000)
        blocks = [next(first), next(second)]
        blocks += list(first)
        assert b"".join(blocks[:1] + blocks[2:]) == body
        assert [len(b) for b in blocks[2:]] == [len(body) - 4096]
        assert b"".join([blocks[1], *second]) == body
        reader = spooled.chunks(1000)
        next(reader)
        spooled.discard()
        with pytest.raises(ValueError, match="discarded"):
            next(reader)
        assert budget.used_bytes == 0


def test_a_full_disk_is_the_process_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spool = make(tmp_path)
    real_write = os.write

    def full_disk(fd: int, data: bytes | memoryview) -> int:
        if fd in spool_fds(spool.directory):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    with spool.request() as budget:
        spooled = budget.file()
        monkeypatch.setattr(os, "write", full_disk)
        with pytest.raises(SpoolFull) as caught:
            spooled.write(b"x" * 10)
        monkeypatch.undo()
        assert caught.value.reason == "process"
        assert spooled.discarded and spool.used_bytes == 0


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_clear_stale_removes_only_what_dead_processes_left(tmp_path: Path) -> None:
    spool = make(tmp_path)
    gone, alive = dead_pid(), os.getppid()
    names = {
        "dead": f"mado-spool-{gone}-abc_12",
        "sibling": f"mado-spool-{alive}-def34",
        "own": f"mado-spool-{os.getpid()}-ghi56",
        "foreign": "notes.txt",
    }
    for name in names.values():
        (spool.directory / name).write_bytes(b"left over")
    assert spool.clear_stale() == 1
    assert sorted(os.listdir(spool.directory)) == sorted(
        names[k] for k in ("sibling", "own", "foreign")
    )
    assert spool.clear_stale() == 0


def test_a_directory_that_is_a_file_fails_at_start(tmp_path: Path) -> None:
    taken = tmp_path / "spool"
    taken.write_text("not a directory")
    with pytest.raises(FileExistsError):
        Spool(taken, max_bytes=10, max_request_bytes=10)
    with pytest.raises(ValueError, match="max_request_bytes"):
        Spool(tmp_path / "ok", max_bytes=10, max_request_bytes=11)


Op = tuple[int, int]  # (which file, bytes to write); file index past the list: a new file


@settings(max_examples=150, deadline=None)
@given(
    max_bytes=st.integers(1, 3_000),
    request_share=st.floats(0.1, 1.0),
    requests=st.lists(
        st.lists(st.tuples(st.integers(0, 6), st.integers(0, 400)), max_size=25),
        min_size=1,
        max_size=3,
    ),
)
def test_write_sequences_never_pass_a_budget_and_sizes_add_up(
    max_bytes: int, request_share: float, requests: list[list[Op]]
) -> None:
    max_request = max(1, int(max_bytes * request_share))
    with tempfile.TemporaryDirectory() as directory:
        spool = Spool(Path(directory), max_bytes=max_bytes, max_request_bytes=max_request)
        budgets = [spool.request() for _ in requests]
        contents: list[dict[SpoolFile, bytes]] = [{} for _ in requests]
        for step in range(max(len(ops) for ops in requests)):
            for number, ops in enumerate(requests):  # the requests take turns
                if step < len(ops):
                    write_one(spool, budgets[number], contents[number], *ops[step])
                live = [f for files in contents for f in files if not f.discarded]
                assert spool.used_bytes == sum(f.size for f in live) <= max_bytes
                for budget, files in zip(budgets, contents, strict=True):
                    held = sum(f.size for f in files if not f.discarded)
                    assert budget.used_bytes == held <= max_request
        for files in contents:
            for spooled, written in files.items():
                if not spooled.discarded:
                    assert spooled.size == len(written)
                    spooled.finish()
                    assert b"".join(spooled.chunks(64)) == written
        for budget in budgets:
            budget.close()
        assert spool.used_bytes == 0
        assert spool_fds(Path(directory)) == []


def write_one(
    spool: Spool, budget: SpoolBudget, files: dict[SpoolFile, bytes], which: int, size: int
) -> None:
    live = [f for f in files if not f.discarded]
    if which >= len(live):
        spooled = budget.file()
        files[spooled] = b""
    else:
        spooled = live[which]
    data = bytes([size % 251]) * size
    over_request = budget.used_bytes + size > spool.max_request_bytes
    over_process = spool.used_bytes + size > spool.max_bytes
    if over_request or over_process:
        with pytest.raises(SpoolFull) as caught:
            spooled.write(data)
        assert caught.value.reason == ("request" if over_request else "process")
        assert spooled.discarded
        return
    spooled.write(data)
    files[spooled] += data
