"""``syncd check-config`` through the real entry point (``python -m syncd``).

Each file in ``tests/configs/bad`` starts with ``# expect: <text>`` lines (all
must appear in the message) and may have ``# secret: <text>`` lines (must not
appear anywhere in the output). Files in ``tests/configs/good`` must load.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Each case runs `python -m syncd` as a real process (about a second each).
pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent.parent  # tests/
ROOT = HERE.parent
BAD = sorted((HERE / "configs" / "bad").glob("*.yaml"))
GOOD = [*sorted((HERE / "configs" / "good").glob("*.yaml")), ROOT / "config" / "syncd.example.yaml"]


def syncd(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m syncd ARGS`` with no SYNCD_* variables but those in ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    return subprocess.run(
        [sys.executable, "-m", "syncd", *args],
        capture_output=True,
        text=True,
        cwd=cwd,  # a scratch dir, so no stray ./syncd.yaml is picked up
        env={**clean, **(env or {})},
        timeout=60,
        check=False,
    )


def directives(path: Path, name: str) -> list[str]:
    """Values of the leading ``# <name>: value`` comment lines of ``path``."""
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        label, _, value = line[1:].strip().partition(": ")
        if label == name:
            found.append(value)
    return found


def assert_one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("syncd: config")
    assert result.stdout == ""
    return lines[0]


def test_corpus_is_big_enough() -> None:
    assert len(BAD) >= 15
    assert all(directives(path, "expect") for path in BAD), "every bad file needs # expect:"


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_config(path: Path, tmp_path: Path) -> None:
    result = syncd("check-config", "-c", str(path), cwd=tmp_path)
    line = assert_one_line_error(result)
    assert str(path) in line  # names the file
    for expected in directives(path, "expect"):
        assert expected in line
    for secret in directives(path, "secret"):
        assert secret not in result.stderr + result.stdout


@pytest.mark.parametrize("path", GOOD, ids=[p.stem for p in GOOD])
def test_good_config(path: Path, tmp_path: Path) -> None:
    result = syncd("check-config", "-c", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "sync_workers" in result.stdout


def test_json_output_parses(tmp_path: Path) -> None:
    example = ROOT / "config" / "syncd.example.yaml"
    result = syncd(
        "check-config",
        "--config",
        str(example),
        "--json",
        cwd=tmp_path,
        env={
            "SYNCD_PRIMARY_PASS": "hunter2hunter2",
            "SYNCD_SYNC_WORKERS": "7",
            "SYNCD_CONTROL_TOKEN": "tok-hunter2hunter2",
        },
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["sync_workers"] == 7
    assert summary["secondary_pass"] == "***"  # set in the file
    assert summary["primary_pass"] == "***"  # set in the environment
    assert summary["control_token"] == "***"  # set in the environment
    assert summary["sync_retry_interval"] == "5s"
    assert summary["tables"]["kv_memories"]["key"] == ["user_id", "key"]
    assert "hunter2hunter2" not in result.stdout
    assert "secretpassword" not in result.stdout  # the example's secondary_pass


def test_human_output_masks_passwords(tmp_path: Path) -> None:
    example = ROOT / "config" / "syncd.example.yaml"
    result = syncd("check-config", "-c", str(example), cwd=tmp_path)
    assert result.returncode == 0
    assert "secretpassword" not in result.stdout
    assert "***" in result.stdout
    assert "kv_memories (key: user_id, key)" in result.stdout


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    line = assert_one_line_error(syncd("check-config", "-c", str(missing), cwd=tmp_path))
    assert line == f"syncd: config {missing}: file not found"


def test_bad_environment_value(tmp_path: Path) -> None:
    result = syncd("check-config", cwd=tmp_path, env={"SYNCD_SYNC_WORKERS": "lots"})
    line = assert_one_line_error(result)
    assert "sync_workers (from SYNCD_SYNC_WORKERS)" in line


def test_default_config_file_lookup(tmp_path: Path) -> None:
    # No -c and no ./syncd.yaml: built-in defaults, and the secondary from the environment.
    secondary = {"SYNCD_SECONDARY_URL": "ws://archive:8000/rpc"}
    result = syncd("check-config", "--json", cwd=tmp_path, env=secondary)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["sync_workers"] == 4
    # ./syncd.yaml is picked up when present...
    (tmp_path / "syncd.yaml").write_text("sync_workers: 5\n", encoding="utf-8")
    result = syncd("check-config", "--json", cwd=tmp_path, env=secondary)
    assert json.loads(result.stdout)["sync_workers"] == 5
    # ...and $SYNCD_CONFIG wins over it.
    other = tmp_path / "other.yaml"
    other.write_text("sync_workers: 6\n", encoding="utf-8")
    result = syncd(
        "check-config", "--json", cwd=tmp_path, env={**secondary, "SYNCD_CONFIG": str(other)}
    )
    assert json.loads(result.stdout)["sync_workers"] == 6


def test_no_config_at_all_names_the_secondary_url(tmp_path: Path) -> None:
    line = assert_one_line_error(syncd("check-config", cwd=tmp_path))
    assert "secondary_url: required" in line and "SYNCD_SECONDARY_URL" in line


@pytest.mark.parametrize(
    "command",
    [
        ["run"],
        ["status"],
        ["backfill"],
        ["verify"],
        ["dlq", "list"],
        ["dlq", "show", "1"],
        ["dlq", "replay"],
        ["dlq", "purge", "--yes"],
    ],
)
def test_every_command_names_a_missing_config_in_one_line(
    command: list[str], tmp_path: Path
) -> None:
    result = syncd(*command, "-c", "whatever.yaml", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "whatever.yaml" in lines[0], result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_each_secondary_is_shown_and_no_password_appears(tmp_path: Path) -> None:
    secrets = {
        "file": "file-pw-4c1d9",  # in the YAML file
        "env": "env-pw-77a2e",  # SYNCD_SECONDARIES_COLD_PASS
        "credential": "cred-pw-0b3f6",  # $CREDENTIALS_DIRECTORY/secondaries_analytics_pass
        "url": "url-pw-9e8d1",  # in a URL's user-info
    }
    (tmp_path / "credentials").mkdir()
    (tmp_path / "credentials" / "secondaries_analytics_pass").write_text(
        secrets["credential"] + "\n"
    )
    config = tmp_path / "multi.yaml"
    config.write_text(
        "secondaries:\n"
        f'  - {{name: archive, url: "ws://u:{secrets["url"]}@archive:8000/rpc", '
        f"pass: {secrets['file']}, priority: 1, namespace: app, database: main}}\n"
        "  - {name: analytics, url: ws://analytics:8000/rpc, priority: 2}\n"
        "  - {name: cold, url: ws://cold:8000/rpc, priority: 3, pass: replaced-by-env}\n"
        "  - {name: spare, url: ws://spare:8000/rpc, priority: 4}\n",
        encoding="utf-8",
    )
    env = {
        "SYNCD_SECONDARIES_COLD_PASS": secrets["env"],
        "CREDENTIALS_DIRECTORY": str(tmp_path / "credentials"),
        "COLUMNS": "250",  # one row per secondary, unwrapped
    }
    human = syncd("check-config", "-c", str(config), cwd=tmp_path, env=env)
    as_json = syncd("check-config", "-c", str(config), "--json", cwd=tmp_path, env=env)
    for result in (human, as_json):
        assert result.returncode == 0, result.stderr
        for secret in [*secrets.values(), "replaced-by-env"]:
            assert secret not in result.stdout + result.stderr
    shown = {s["name"]: s for s in json.loads(as_json.stdout)["secondaries"]}
    assert [shown[n]["pass"] for n in ("archive", "analytics", "cold", "spare")] == [
        "***",
        "***",
        "***",
        None,
    ]
    assert shown["archive"]["url"] == "ws://u:***@archive:8000/rpc"
    rows = {
        cells[0]: cells[1:]
        for line in human.stdout.splitlines()
        if line.count("│") == 9 and (cells := [c.strip() for c in line.split("│")[1:-1]])
    }
    assert rows["archive"] == [
        "1",
        "ws://u:***@archive:8000/rpc",
        "root",
        "app",
        "main",
        "***",
        "SYNCD_SECONDARIES_ARCHIVE_PASS",
    ]
    assert rows["analytics"][5:] == ["***", "SYNCD_SECONDARIES_ANALYTICS_PASS"]
    assert rows["cold"][5] == "***" and rows["spare"][5] == "not set"
    # The flat secondary_* keys mean nothing next to a secondaries list: not shown.
    assert "secondary_url" not in human.stdout


def test_unknown_environment_variable_is_one_line_exit_2(tmp_path: Path) -> None:
    (tmp_path / "syncd.yaml").write_text('secondary_url: "ws://127.0.0.1:1/rpc"\n')
    result = syncd("check-config", cwd=tmp_path, env={"SYNCD_SYNC_WORKER": "8"})
    line = assert_one_line_error(result)
    assert 'unknown environment variable "SYNCD_SYNC_WORKER"' in line
    assert '(did you mean "SYNCD_SYNC_WORKERS"?)' in line
