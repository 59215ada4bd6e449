"""``syncd run`` and the one-shot tools as real processes: what an operator's mistake looks like.

Each mistake — a state_dir that is a file or read-only, a config that names
no secondary, a daemon pointed at an in-process ``mem://`` primary, a wrong
password — must end in one line naming the problem and exit status 2, soon;
never a traceback, never a hang.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from surrealdb import RecordID

from syncd.dev.process import DevServerProcess as ServerProcess
from syncd.pipeline.deadletter import DeadLetterFile
from syncd.pipeline.pause import PauseFile
from syncd.sink.operation import Operation
from tests.support.daemon import SyncdProcess
from tests.support.replica import rows_by_id
from tests.support.secondaries import write_secondaries_config
from tests.support.tools import close, connect, free_port, syncd, write_config

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
    assert result.stdout == (
        "t: 2 records copied to analytics\nanalytics: copied 2, dead-lettered 0\n"
    )
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


@pytest.mark.integration
async def test_backfill_says_what_it_dead_lettered_once_and_exits_1(
    tmp_path: Path, primary_server: ServerProcess, secondary_server: ServerProcess
) -> None:
    write_config(tmp_path, primary=primary_server, secondary=secondary_server, database="dead")
    primary = await connect(primary_server, "dead")
    await primary.query(
        "CREATE t:1 SET u = 'same'; CREATE t:2 SET u = 'same'; CREATE t:3 SET u = 3"
    )
    await close(primary)
    secondary = await connect(secondary_server, "dead")
    await secondary.query("DEFINE INDEX t_u ON t FIELDS u UNIQUE")  # refuses the second 'same'
    await close(secondary)
    dlq = DeadLetterFile(tmp_path / "state" / "deadletters.jsonl")
    for _ in range(2):  # a second run must not add the same dead letter again
        result = syncd("backfill", "-c", "syncd.yaml", cwd=tmp_path)
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr
        assert result.stdout.splitlines()[-1] == (
            "secondary: copied 3, dead-lettered 1 (see `syncd dlq list`)"
        )
        assert dlq.count() == 1


@pytest.mark.integration
async def test_backfill_of_an_empty_primary_database_is_refused(
    tmp_path: Path, primary_server: ServerProcess, secondary_server: ServerProcess
) -> None:
    write_config(tmp_path, primary=primary_server, secondary=secondary_server, database="void")
    line = one_line(syncd("backfill", "-c", "syncd.yaml", cwd=tmp_path))
    assert line == (
        'syncd: backfill: the primary database (namespace "app", database "void") has no '
        "tables to copy (are primary_namespace and primary_database the application's?)"
    )


@pytest.mark.parametrize("command", ["backfill", "verify"])
def test_one_shot_tools_on_an_unreachable_primary_say_why_once_and_soon(
    tmp_path: Path, command: str
) -> None:
    write_config(tmp_path, primary=None, secondary=None, database="main")  # connect_timeout 2s
    started = time.monotonic()
    line = one_line(syncd(command, "-c", "syncd.yaml", cwd=tmp_path, timeout=30))
    assert time.monotonic() - started < 2.0 + 4.0  # connect_timeout, the interpreter's start
    assert line.startswith("syncd: cannot connect to the primary at ws://127.0.0.1:9/rpc: ")
    assert "unavailable" not in line and "PrimaryUnavailable" not in line
    assert line.count("Error") == 1, line  # the cause, once


@pytest.mark.integration
async def test_a_daemon_waiting_on_the_primary_says_why_and_shows_no_lag(
    tmp_path: Path, secondary_server: ServerProcess
) -> None:
    daemon = SyncdProcess(
        tmp_path, f"ws://127.0.0.1:{free_port()}/rpc", f"{secondary_server.url}/rpc"
    )
    daemon.start()
    try:
        deadline = time.monotonic() + 30
        ready: tuple[int, str] = (0, "")
        while time.monotonic() < deadline:
            ready = daemon.http("/readyz")
            if "primary down" in ready[1]:
                break
            await anyio.sleep(0.2)
        assert ready[0] == 503, ready
        assert ready[1].startswith("starting: primary down: ConnectionRefusedError"), ready
        assert "unavailable" not in ready[1]
        result = syncd("status", "-c", str(daemon.config), cwd=tmp_path)
        text = " ".join(result.stdout.replace("│", " ").split())
        assert "degraded: primary down" in text, result.stdout
        assert "lag — (unknown while the primary is down)" in text
        assert "0.000s" not in text
    finally:
        daemon.stop()


def test_version_is_printed() -> None:
    from importlib.metadata import version

    result = syncd("--version", cwd=Path.cwd(), timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"syncd {version('syncd')}\n"


def test_status_watch_asks_again_until_ctrl_c(tmp_path: Path) -> None:
    write_config(tmp_path, primary=None, secondary=None, database="main")  # no daemon
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    args = ["status", "-c", "syncd.yaml", "--watch", "--json", "--interval", "0.2"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "syncd", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        looks = [json.loads(proc.stdout.readline()) for _ in range(3)]  # blocks until each
        assert all(look["health"] == "unknown" for look in looks)
        assert looks[0]["checked_at"] < looks[2]["checked_at"]
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
