"""Opening the spool: check each segment, repair what is damaged, report what is lost.

Damage costs only the frames it overlaps (:func:`syncd.pipeline.segments.walk`
resynchronises on the next valid frame). What is found is logged
(``spool_frames_lost``, at error level, with the seq when a frame head names
it, never the contents) and counted through ``on_lost``; the damaged bytes are
kept in ``corrupt/`` for a human, then made into a pad frame in place, so the
next open does not report them again. A damaged segment header is rewritten
(frames describe themselves: only the nonce, hence a saved read position, is
lost). A torn tail (power loss mid-write) is cut off.

A segment can also go whole: ``head.json`` names every segment the spool
holds (rewritten when one is started or deleted), so a named segment missing
at open is reported lost (``spool_segment_missing``), and so is a segment cut
shorter than its header but not empty (an empty one was started and never
written: it held nothing). What was lost is never known by table: the caller
(the queue) has every replicated table copied again (library) or relies on
the feed (daemon).
"""

from __future__ import annotations

import json
import mmap
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from syncd.files import write_atomically
from syncd.pipeline.legacy import LEGACY_MAGIC, convert
from syncd.pipeline.segments import (
    FRAME,
    FRAME_MAGIC,
    HEADER,
    MAGIC,
    NAME,
    Damage,
    Segment,
    lost_estimate,
    pad_head,
    survey,
)

__all__ = ["TAIL_BASE", "check_segment", "keep", "recover", "report_lost", "save_state"]

log = structlog.get_logger("syncd.pipeline.spool")

#: Number of the first segment; later ones count up from the highest found.
TAIL_BASE = 10**12
STATE = "head.json"
OnLost = Callable[[int], None] | None


def recover(directory: Path, on_lost: OnLost) -> tuple[list[Segment], int, int]:
    """Check every segment in ``directory``; return those holding unconfirmed
    frames (in read order), the largest seq ever spooled, and the next segment number."""
    max_seq, saved, named = load_state(directory)
    for stray in directory.glob(".seg-*.tmp"):  # a rewrite cut short: keep its bytes
        keep(directory, stray.read_bytes(), f"{stray.name.lstrip('.')}.stray")
        stray.unlink()
    segments: list[Segment] = []
    next_tail, last = TAIL_BASE, None
    found = sorted(directory.glob("seg-*.spool"))
    for gone in sorted(set(named) - {path.name for path in found}):
        log.error("spool_segment_missing", file=gone)
        if on_lost is not None:
            on_lost(1)  # at least one: how many it held is not known
    for path in found:
        if match := NAME.fullmatch(path.name):
            number = int(match.group(1))
            next_tail = max(next_tail, number + 1)
            seg, top = check_segment(path, number, saved.get(path.name), last, on_lost)
            max_seq, last = max(max_seq, top), top or last
            if seg is not None:
                segments.append(seg)
    return segments, max_seq, next_tail


def load_state(directory: Path) -> tuple[int, dict[str, list[Any]], list[str]]:
    """``max_seq``, the saved offsets and the segments named in ``head.json``
    (none if missing or damaged; an older ``head.json`` names no segment)."""
    try:
        state = json.loads((directory / STATE).read_text())
        items = state["offsets"].items()
        offsets = {str(k): v for k, v in items if isinstance(v, list) and len(v) == 2}
        named = [str(n) for n in state.get("segments", []) if NAME.fullmatch(str(n))]
        return int(state["max_seq"]), offsets, named
    except FileNotFoundError:
        return 0, {}, []
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        # Costs re-delivery of partly confirmed segments, and the check for
        # missing ones this once: not worth refusing to start.
        log.warning("spool_state_ignored", error=f"{type(exc).__name__}: {exc}")
        return 0, {}, []


def save_state(directory: Path, segments: list[Segment], max_seq: int, *, fsync: bool) -> None:
    """Replace ``head.json``: every segment's name, and each partly confirmed one's
    nonce and offset."""
    offsets = {
        s.path.name: [s.nonce.hex(), s.confirmed] for s in segments if s.confirmed > HEADER.size
    }
    state = {
        "v": 1,
        "max_seq": max_seq,
        "offsets": offsets,
        "segments": [s.path.name for s in segments],
    }
    write_atomically(directory / STATE, json.dumps(state).encode(), durable=fsync)


def check_segment(
    path: Path, number: int, saved: list[Any] | None, last: int | None, on_lost: OnLost
) -> tuple[Segment | None, int]:
    """Check and repair one segment; return it (``None``: it held nothing, and is
    deleted) and the largest seq in it (0 if none).

    ``saved`` is its ``head.json`` entry; ``last`` the previous segment's last seq.
    """
    size = path.stat().st_size
    if not size:  # created, never written (its header goes out with its first frames)
        path.unlink()
        return None, 0
    if size < HEADER.size:  # cut inside the header: its frames are gone
        keep(path.parent, path.read_bytes(), f"{path.name}.torn-0")
        path.unlink()
        log.warning("spool_tail_truncated", file=path.name, offset=0, bytes_dropped=size)
        log.error("spool_frames_lost", file=path.name, offset=0, frames=1)
        if on_lost is not None:
            on_lost(1)  # at least one: how many it held is not known
        return None, 0
    with path.open("r+b") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        if mm[:8] == LEGACY_MAGIC:
            data = convert(mm, saved)  # written by an older syncd: rewritten once
            write_atomically(path, data)
            log.info("spool_segment_converted", file=path.name)
            return check_segment(path, number, None, last, on_lost)
        found = survey(mm, size, saved, last)
        nonce = found.nonce
        if found.magic != MAGIC:
            nonce = os.urandom(8)
            os.pwrite(f.fileno(), HEADER.pack(MAGIC, nonce), 0)
            log.error("spool_header_repaired", file=path.name)
        for region, before, after in found.damage:
            data = mm[region.start : region.end]
            report_lost(path, f.fileno(), data, region, lost_estimate(data, before, after), on_lost)
        if found.end < size:
            _cut_torn(path, f.fileno(), mm[found.end : size], found.end, on_lost)
    if not found.frames:  # confirmed to the end before a crash, not yet deleted
        path.unlink()
        return None, found.max_seq
    return Segment(number, path, nonce, found.end, found.start, found.frames, found.start), (
        found.max_seq
    )


def report_lost(
    path: Path, fd: int, region: bytes, at: Damage, frames: int, on_lost: OnLost
) -> None:
    """Report ``frames`` lost in the damaged ``region`` at ``at``; keep its bytes; pad it."""
    keep(path.parent, region, f"{path.name}.lost-{at.start}")
    if len(region) >= FRAME.size:
        os.pwrite(fd, pad_head(region), at.start)
    log.error(
        "spool_frames_lost",
        file=path.name,
        offset=at.start,
        bytes=len(region),
        frames=frames,
        **_seqs(region),
    )
    if on_lost is not None and frames:
        on_lost(frames)


def _cut_torn(path: Path, fd: int, torn: bytes, end: int, on_lost: OnLost) -> None:
    """Cut a torn tail (a frame whose write did not complete); keep its bytes."""
    keep(path.parent, torn, f"{path.name}.torn-{end}")
    os.ftruncate(fd, end)
    log.warning("spool_tail_truncated", file=path.name, offset=end, bytes_dropped=len(torn))
    log.error("spool_frames_lost", file=path.name, offset=end, frames=1, **_seqs(torn))
    if on_lost is not None:
        on_lost(1)


def keep(directory: Path, data: bytes, name: str) -> None:
    """Keep damaged bytes for a human, in ``directory/corrupt/``."""
    (target := directory / "corrupt").mkdir(mode=0o700, exist_ok=True)
    path = target / name
    if path.exists():
        path = path.with_name(f"{name}.{time.time_ns()}")
    path.write_bytes(data)


def _seqs(region: bytes) -> dict[str, int]:
    """The seq a damaged region's first frame head names, if that head is intact."""
    if len(region) >= FRAME.size:
        magic, _, _, seq, _ = FRAME.unpack_from(region)
        if magic == FRAME_MAGIC and seq:
            return {"first_seq": seq}
    return {}
