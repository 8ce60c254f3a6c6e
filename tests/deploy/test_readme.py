"""The README's "Deploy on Kubernetes" section shows the commands the deployment tests run."""

from __future__ import annotations

from tests.deploy.commands import COMMANDS
from tests.deploy.podman import REPO


def section() -> list[str]:
    text = (REPO / "README.md").read_text()
    start = text.index("\n## Deploy on Kubernetes\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None].splitlines()


def test_every_tested_command_is_in_the_readme() -> None:
    lines = section()
    missing = [command for command in COMMANDS.values() if command not in lines]
    assert missing == []


def test_every_readme_command_is_tested() -> None:
    lines = section()
    blocks = [i for i, line in enumerate(lines) if line.startswith("```")]
    commands = [
        line
        for start, end in zip(blocks[::2], blocks[1::2], strict=True)
        for line in lines[start + 1 : end]
        if line.strip()
    ]
    assert commands
    assert set(commands) <= set(COMMANDS.values())
