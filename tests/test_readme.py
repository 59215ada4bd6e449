"""README's library example, run as written: its ``syncd.yaml`` and ``example.py`` blocks,
against two devserver processes started the way README says (only the ports differ)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import anyio
import pytest
import yaml

from syncd.config import Config
from syncd.dev.process import DevServerProcess as ServerProcess
from tests.support.tools import close, connect

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

README = Path(__file__).resolve().parent.parent / "README.md"


def block_after(text: str, marker: str, language: str) -> str:
    """The first fenced ``language`` block after the line holding ``marker``."""
    at = text.index(marker)
    match = re.compile(rf"```{language}\n(.*?)```", re.S).search(text, at)
    assert match is not None, f"no {language} block after {marker!r}"
    return match.group(1)


def library_section() -> str:
    text = README.read_text(encoding="utf-8")
    return text[text.index("## As a library") : text.index("- Captured: `create`")]


def test_readme_config_is_minimal_and_valid() -> None:
    data = yaml.safe_load(block_after(library_section(), "`syncd.yaml`", "yaml"))
    config = Config.from_mapping(data)
    # The secondary writes where the application does (primary_* -> secondary_*).
    assert (config.secondary_namespace, config.secondary_database) == ("app", "main")


async def test_readme_library_example_runs_as_written(tmp_path: Path) -> None:
    section = library_section()
    servers = block_after(section, "A first try", "sh")
    assert "python -m syncd.dev.devserver --port 8000 --user root --pass root &" in servers
    assert "python -m syncd.dev.devserver --port 8001 --user root --pass root &" in servers
    config = block_after(section, "`syncd.yaml`", "yaml")
    example = block_after(section, "`example.py`", "python")
    with ServerProcess() as primary, ServerProcess() as secondary:
        # The same files, on the ports these servers got.
        ports = {"127.0.0.1:8000": primary.port, "127.0.0.1:8001": secondary.port}
        for written, port in ports.items():
            config = config.replace(written, f"127.0.0.1:{port}")
            example = example.replace(written, f"127.0.0.1:{port}")
        (tmp_path / "syncd.yaml").write_text(config, encoding="utf-8")
        (tmp_path / "example.py").write_text(example, encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
        with anyio.fail_after(90):
            result = await anyio.run_process(
                [sys.executable, "example.py"], cwd=tmp_path, env=env, check=False
            )
        out, err = result.stdout.decode(), result.stderr.decode()
        assert result.returncode == 0, err
        assert "Traceback" not in out + err
        # Its own line; syncd's log lines (structlog's default output) around it.
        assert "1 record(s); everything applied to the secondary" in out.splitlines()
        db = await connect(secondary, "main")  # app/main: where the application writes
        try:
            rows = await db.query("SELECT user_id, key, value FROM kv_memories")
        finally:
            await close(db)
        assert rows == [{"user_id": "u1", "key": "k", "value": 1}]
