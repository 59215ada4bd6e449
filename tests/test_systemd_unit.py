"""The systemd unit: hardened, notify-typed, and accepted by systemd-analyze where it exists."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from syncd.config import Config
from syncd.config.secondaries import CREDENTIAL_KEYS, NAME_RULE
from syncd.durations import parse_duration

UNIT = Path(__file__).parent.parent / "systemd" / "syncd.service"


def service_section() -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    section = None
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[Service]":
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


def test_unit_is_notify_typed_and_hardened() -> None:
    service = service_section()
    assert service["Type"] == ["notify"]
    for key, value in {
        "DynamicUser": "yes",
        "StateDirectory": "syncd",
        "ConfigurationDirectory": "syncd",
        "ProtectSystem": "strict",
        "NoNewPrivileges": "yes",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    }.items():
        assert service[key] == [value], key
    assert "@system-service" in service["SystemCallFilter"]
    assert any(v.startswith("primary_pass:") for v in service["LoadCredential"])
    assert "WatchdogSec" in service


def credentials(*, commented: bool) -> dict[str, str]:
    """``LoadCredential=`` lines of the unit (or its commented examples): name -> source."""
    prefix = "#LoadCredential=" if commented else "LoadCredential="
    found = {}
    for raw in UNIT.read_text().splitlines():
        if raw.strip().startswith(prefix):
            name, _, source = raw.strip().removeprefix(prefix).partition(":")
            found[name] = source
    return found


def syncd_reads_credential(name: str) -> bool:
    """Whether syncd reads a credential of this name (syncd.config.secondaries)."""
    if name in CREDENTIAL_KEYS:
        return True
    inner = name.removeprefix("secondaries_").removesuffix("_pass")
    return name == f"secondaries_{inner}_pass" and NAME_RULE.fullmatch(inner) is not None


def test_credentials_are_ones_syncd_reads() -> None:
    active, examples = credentials(commented=False), credentials(commented=True)
    assert set(active) == {"primary_pass", "secondary_pass"}
    assert examples["secondaries_archive_pass"] == "/etc/syncd/archive.pass"
    assert "control_token" in examples
    for name, source in {**active, **examples}.items():
        assert syncd_reads_credential(name), name
        assert source.startswith("/etc/syncd/"), name
    assert not syncd_reads_credential("secondaries_Archive_pass")
    assert not syncd_reads_credential("archive_pass")


def test_syncd_reads_the_credentials_itself() -> None:
    """No shell exporting SYNCD_SECONDARY_PASS: with a secondaries: list that variable
    sets the flat key too, and syncd refuses the config (both forms given)."""
    (start,) = service_section()["ExecStart"]
    assert start == "/opt/syncd/bin/syncd run -c /etc/syncd/syncd.yaml"
    assert not re.search(r"SYNCD_[A-Z_]*PASS", UNIT.read_text())


def test_stop_timeout_outlasts_the_drain() -> None:
    stop = parse_duration(service_section()["TimeoutStopSec"][0])
    assert stop > Config.model_fields["drain_timeout"].default + 10


def test_no_secret_in_the_unit() -> None:
    text = UNIT.read_text().lower()
    assert "secretpassword" not in text and "pass=" not in text.replace("_pass=", "")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not here")
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    # verify checks that ExecStart binaries exist: point them at this venv's.
    syncd = Path(sys.executable).with_name("syncd")
    unit = tmp_path / "syncd.service"
    unit.write_text(UNIT.read_text().replace("/opt/syncd/bin/syncd", str(syncd)))
    done = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    complaints = [line for line in (done.stdout + done.stderr).splitlines() if str(unit) in line]
    assert done.returncode == 0, done.stderr
    assert complaints == []


def test_unit_parses_as_ini() -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read_string(UNIT.read_text())
    assert {"Unit", "Service", "Install"} <= set(parser.sections())
