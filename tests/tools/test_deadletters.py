"""Dead-letter files of several secondaries read together; entry ids ``NAME:LINE``."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.errors import ConfigError, UnknownSecondary
from syncd.pipeline.deadletter import DeadLetterFile
from syncd.pipeline.statedir import state_files
from syncd.sink.operation import Operation
from syncd.tools.deadletters import LetterFile, entry_id, find_entry, read_files
from tests.support.replica import entry, make_config


def letters(*names: str) -> list[LetterFile]:
    return [LetterFile(name, DeadLetterFile(Path(f"/nonexistent/{name}"))) for name in names]


def test_entry_ids() -> None:
    assert entry_id("archive", 3) == "archive:3"


def test_a_named_entry_is_found_in_its_file() -> None:
    files = letters("a", "b")
    file, line = find_entry(files, "b:12")
    assert (file.name, line) == ("b", 12)


def test_a_bare_line_is_enough_with_one_file() -> None:
    [only] = files = letters("a")
    assert find_entry(files, "7") == (only, 7)


def test_a_bare_line_among_several_is_refused_saying_how() -> None:
    with pytest.raises(ConfigError) as caught:
        find_entry(letters("a", "b"), "7")
    assert str(caught.value) == (
        "entry 7: several secondaries have a dead-letter file; say which, e.g. a:7 or b:7 "
        "(or select one with --secondary)"
    )


def test_a_name_with_a_colon_is_split_at_the_last_one() -> None:
    files = letters("odd:name")
    file, line = find_entry(files, "odd:name:2")
    assert (file.name, line) == ("odd:name", 2)


@pytest.mark.parametrize("text", ["", "x", "a:", ":3", "a:0", "a:-1", "a:1.5", "0"])
def test_what_is_not_an_id_is_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="not an entry id") as caught:
        find_entry(letters("a"), text)
    assert not isinstance(caught.value, UnknownSecondary)


def test_an_unknown_secondary_is_named_with_the_selected_ones() -> None:
    with pytest.raises(UnknownSecondary) as caught:
        find_entry(letters("a", "b"), "c:1")
    assert str(caught.value) == "entry c:1: unknown secondary 'c' (selected: a, b)"


def test_read_files_reads_each_secondarys_own_file(tmp_path: Path) -> None:
    config = make_config(
        tmp_path, None, secondaries=[entry("a", "ws://h:1"), entry("b", "ws://h:2", 1)]
    )
    path_a = state_files(config.secondary_state("a"))[1]
    dlq = DeadLetterFile(path_a)
    dlq.append(Operation("t", "t:1", {"id": "t:1"}), "refused", first_failed_at=1.0)
    with path_a.open("ab") as f:
        f.write(b"not json\n")
    before = path_a.read_bytes()
    files = read_files(config, ["a", "b"])
    assert [f.name for f in files] == ["a", "b"]
    a, b = files
    assert [(e.line_no, e.op.key, e.error) for e in a.entries] == [(1, "t:1", "refused")]
    assert [line for line, _ in a.malformed] == [2]
    assert (b.entries, b.malformed) == ([], [])  # no file: empty
    assert path_a.read_bytes() == before  # reading changes nothing
    assert find_entry(files, "a:1") == (a, 1)
