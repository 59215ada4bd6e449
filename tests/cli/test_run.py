"""``syncd run`` and the one-shot tools as real processes: what an operator's mistake looks like.

Each mistake — a state_dir that is a file or read-only, a config that names
no secondary, a daemon pointed at an in-process ``mem://`` primary, a wrong
password — must end in one line naming the problem and exit status 2, soon;
never a traceback, never a hang.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from surrealdb import RecordID

from syncd.pipeline.deadletter import DeadLetterFile
from syncd.pipeline.pause import PauseFile
from syncd.sink.operation import Operation
from tests.support.daemon import SyncdProcess
from tests.support.replica import rows_by_id
from tests.support.secondaries import write_secondaries_config
from tests.support.server import ServerProcess
from tests.support.tools import close, connect, syncd, write_config

pytestmark = pytest.mark.timeout(120)


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a failed command (exit 2, no traceback, nothing else)."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("syncd: ")
    return lines[0]


# --------------------------------------------------------------------------- state_dir


@pytest.mark.parametrize("command", ["run", "backfill"])
def test_state_dir_that_is_a_file(tmp_path: Path, command: str) -> None:
    state = tmp_path / "state"
    state.write_text("not a directory\n")
    write_config(tmp_path, primary=None, secondary=None, database="main")
    line = one_line(syncd(command, "-c", "syncd.yaml", cwd=tmp_path, timeout=30))
    assert line == f"syncd: state_dir {state}: is a file, not a directory"


def test_state_dir_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    state = tmp_path / "file" / "state"
    write_config(tmp_path, primary=None, secondary=None, database="main", state_dir=str(state))
    line = one_line(syncd("run", "-c", "syncd.yaml", cwd=tmp_path, timeout=30))
    assert line == f"syncd: state_dir {state}: lies under a file, not a directory"


@pytest.fixture
def immutable_state(tmp_path: Path) -> Iterator[Path]:
    """An existing state_dir nobody, root included, can create files in (``chattr +i``)."""
    state = tmp_path / "state"
    state.mkdir()
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(state)], check=False).returncode:
        pytest.skip("chattr +i is not available here")
    try:
        yield state
    finally:
        subprocess.run([chattr, "-i", str(state)], check=True)


@pytest.mark.parametrize("command", ["run", "backfill"])
def test_read_only_state_dir(tmp_path: Path, immutable_state: Path, command: str) -> None:
    write_config(tmp_path, primary=None, secondary=None, database="main")
    line = one_line(syncd(command, "-c", "syncd.yaml", cwd=tmp_path, timeout=30))
    assert line.startswith(f"syncd: state_dir {immutable_state}: not permitted")


# --------------------------------------------------------------------------- what to replicate


def test_run_refuses_an_in_process_primary(tmp_path: Path) -> None:
    for url in ("mem://", "memory://"):
        write_config(tmp_path, primary=None, secondary=None, database="main", primary_url=url)
        line = one_line(syncd("run", "-c", "syncd.yaml", cwd=tmp_path, timeout=30))
        assert line.startswith(
            f"syncd: config syncd.yaml: primary_url: syncd run needs the URL of the database "
            f'to replicate, e.g. "ws://primary-db:8000/rpc" (got "{url}"'
        )
    assert not (tmp_path / "state").exists()  # refused before touching anything


@pytest.mark.parametrize("text", ["", "# nothing but a comment\n", "primary_url: ws://db:8000\n"])
def test_run_refuses_a_config_without_a_secondary(tmp_path: Path, text: str) -> None:
    (tmp_path / "syncd.yaml").write_text(text)
    line = one_line(syncd("run", "-c", "syncd.yaml", cwd=tmp_path, timeout=30))
    assert line.startswith("syncd: config syncd.yaml: secondary_url: required")


# --------------------------------------------------------------------------- a wrong password

DB = "auth"
# Long enough that starting the interpreter on a loaded machine fits well inside
# it: a command that ends sooner ended on the refusal, not on the timeout.
CONNECT_TIMEOUT = 30.0


@pytest.fixture
def server() -> Iterator[ServerProcess]:
    """One devserver with a root user: the primary in app/auth, the secondary in app/replica."""
    with ServerProcess(user="root", password="root") as process:
        yield process


async def seed(server: ServerProcess) -> None:
    """Records on the primary, so a backfill has something to wait on."""
    db = await connect(server, DB)
    try:
        await db.query("CREATE events:1 SET n = 1; CREATE events:2 SET n = 2")
    finally:
        await close(db)


def wrong(tmp_path: Path, server: ServerProcess, role: str) -> Path:
    """A config whose ``role`` password is wrong (the other one right)."""
    return write_config(
        tmp_path,
        primary=server,
        secondary=server,
        database=DB,
        secondary_database="replica",
        connect_timeout=f"{CONNECT_TIMEOUT:g}s",
        tables={"events": {}},
        **{f"{role}_pass": "not-the-password"},
    )


def timed(*args: str, cwd: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = syncd(*args, cwd=cwd, timeout=2 * CONNECT_TIMEOUT)
    return result, time.monotonic() - started


@pytest.mark.integration
@pytest.mark.parametrize("role", ["secondary", "primary"])
@pytest.mark.parametrize("command", [["backfill"], ["verify"], ["dlq", "replay"]])
async def test_one_shot_tools_end_on_a_refused_password(
    tmp_path: Path, server: ServerProcess, role: str, command: list[str]
) -> None:
    await seed(server)
    wrong(tmp_path, server, role)
    if command[0] == "dlq":  # replay connects only when there is something to replay
        op = Operation("events", "events:1", {"id": RecordID("events", 1), "n": 1})
        DeadLetterFile(tmp_path / "state" / "deadletters.jsonl").append(
            op, "refused", first_failed_at=time.time()
        )
    result, seconds = timed(*command, "-c", "syncd.yaml", cwd=tmp_path)
    line = one_line(result)
    assert line == (
        f"syncd: cannot sign in to the {role} at {server.url}/rpc: {role} refused the "
        f"credentials of user 'root' (check {role}_user and {role}_pass)"
    )
    assert "not-the-password" not in result.stdout + result.stderr
    # Within connect_timeout, starting the interpreter included.
    assert seconds < CONNECT_TIMEOUT, seconds


def metric(port: int, name: str, labels: str) -> float | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(f"{name}{{{labels}}} "):
                return float(line.split()[-1])
    return None


@pytest.mark.integration
async def test_a_daemon_refused_by_the_secondary_says_so(
    tmp_path: Path, server: ServerProcess
) -> None:
    await seed(server)
    daemon = SyncdProcess(
        tmp_path,
        f"{server.url}/rpc",
        f"{server.url}/rpc",
        secondary_pass="not-the-password",
        secondary_database="replica",
        tables={"events": {}},
    )
    daemon.start()
    try:
        deadline = time.monotonic() + 60
        refused: tuple[int, str] = (0, "")
        while time.monotonic() < deadline:
            refused = daemon.http("/readyz")
            if "refused" in refused[1]:
                break
            await anyio.sleep(0.2)
        # "starting: ..." while a first backfill waits on the secondary, then "...".
        assert refused[0] == 503 and refused[1].endswith(
            "secondary refused the credentials of user 'root' "
            "(check secondary_user and secondary_pass)\n"
        ), refused
        failures = metric(
            daemon.port,
            "syncd_connection_failures_total",
            'reason="auth",role="secondary",secondary="secondary"',
        )
        assert failures is not None and failures >= 1
        status = json.loads(daemon.http("/status")[1])
        assert status["secondary"]["failure"] == "auth"
        result, seconds = timed("status", "-c", str(daemon.config), cwd=tmp_path)
        assert one_line(result) == (
            "syncd: the secondary refuses the configured credentials (reported by "
            f"http://127.0.0.1:{daemon.port}/status); check secondary_user and secondary_pass"
        )
        assert seconds < CONNECT_TIMEOUT
    finally:
        daemon.stop()
    logged = [json.loads(line) for line in daemon.log.read_text().splitlines()]
    auth = [e for e in logged if e["event"] == "connection_auth_failed"]
    assert auth and {e["level"] for e in auth} == {"error"}
    assert {e["role"] for e in auth} == {"secondary"}
    assert "not-the-password" not in daemon.log.read_text()


@pytest.mark.integration
async def test_backfill_copies_to_the_selected_secondaries_only(
    tmp_path: Path, primary_server: ServerProcess, secondary_server: ServerProcess
) -> None:
    # archive: the secondary server; analytics: another database on the primary's server.
    targets = {"archive": (secondary_server, "fill"), "analytics": (primary_server, "fill_b")}
    write_secondaries_config(tmp_path, primary=primary_server, database="fill", secondaries=targets)
    primary = await connect(primary_server, "fill")
    await primary.query("CREATE t:1 SET n = 1; CREATE t:2 SET n = 2")
    await close(primary)

    async def rows(target: tuple[ServerProcess, str]) -> list[str]:
        db = await connect(*target)
        try:
            return sorted(await rows_by_id(db, "t"))
        finally:
            await close(db)

    result = syncd("backfill", "-c", "syncd.yaml", "--secondary", "analytics", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "t: 2 records copied to analytics\n"
    assert (await rows(targets["analytics"]), await rows(targets["archive"])) == (
        ["t:1", "t:2"],
        [],
    )

    PauseFile(tmp_path / "state").save({"analytics": time.time()})
    line = one_line(syncd("backfill", "-c", "syncd.yaml", cwd=tmp_path))
    assert line.startswith("syncd: secondary analytics is paused (since ")
    result = syncd("backfill", "-c", "syncd.yaml", "--secondary", "archive", cwd=tmp_path)
    assert result.returncode == 0, result.stderr  # a pause of another secondary is no reason
    assert await rows(targets["archive"]) == ["t:1", "t:2"]
