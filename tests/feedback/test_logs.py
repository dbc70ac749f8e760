"""The segmented logs: segments close on a new day or a size, become Parquet once, and are read once;
torn last lines are skipped."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest

from catalog.feedback.logs import SegmentWriter, json_line, open_segments, seal_dead_segments, stream_dir
from catalog.feedback.warehouse import observe
from tests.feedback.helpers import assignment, at, write_records

DAY = at(0)[:10]


def _files(root: Path, pattern: str) -> list[Path]:
    return sorted(stream_dir(root, "assignments", "shop").glob(f"day=*/{pattern}"))


def _requests(root: Path) -> int:
    return sum(arm.requests for arm in observe(root, "shop", "rec", outcomes={}).arms)


def _dead_segment(root: Path, lines: list[str], tail: str = "") -> Path:
    """A segment its writer left behind (nobody holds it), ``tail`` written after the last newline."""
    folder = stream_dir(root, "assignments", "shop") / f"day={DAY}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "20261201T100000000000Z-1-dead00.jsonl"
    path.write_text("".join(lines) + tail, encoding="utf-8")
    return path


def test_a_segment_closes_on_a_new_day_and_becomes_parquet_once(tmp_path: Path) -> None:
    writer = write_records(tmp_path, "assignments", [assignment(f"r{i}", "A", at(i * 5), f"u{i}") for i in range(4)])
    assert [p.parent.name for p in _files(tmp_path, "*.parquet")] == ["day=2026-12-01"]
    assert [p.parent.name for p in _files(tmp_path, "*.jsonl")] == ["day=2026-12-02"]  # 10:00 + 15 h: open
    assert _requests(tmp_path) == 4
    writer.close()
    assert not _files(tmp_path, "*.jsonl") and not list(tmp_path.rglob("*.tmp"))
    assert len(_files(tmp_path, "*.parquet")) == 2 and _requests(tmp_path) == 4


def test_a_segment_over_the_size_limit_closes(tmp_path: Path) -> None:
    writer = SegmentWriter(tmp_path, "assignments", "shop", max_bytes=1000)
    line = json_line(assignment("r", "A", at(0), "u"))
    for _ in range(10):
        writer.append(line, DAY)
    assert len(line) == 247  # 5 lines pass 1,000 bytes: the sixth starts a new segment
    assert (len(_files(tmp_path, "*.parquet")), len(_files(tmp_path, "*.jsonl"))) == (1, 1)
    writer.close()
    assert len(_files(tmp_path, "*.parquet")) == 2 and _requests(tmp_path) == 10


def test_a_torn_last_line_is_skipped_with_a_warning_never_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lines = [json_line(assignment(f"r{i}", "A", at(0.1 * i), f"u{i}")) for i in range(3)]
    torn = json_line(assignment("torn", "A", at(1), "u9"))[:-1]  # killed before its newline
    path = _dead_segment(tmp_path, lines, tail=torn)
    with caplog.at_level(logging.WARNING, logger="catalog.feedback.logs"):
        assert _requests(tmp_path) == 3
    assert f"{path}: skipped a torn last line" in caplog.text

    assert seal_dead_segments(tmp_path, "assignments", "shop") == 1  # what the next writer does
    assert not path.exists() and _requests(tmp_path) == 3


def test_a_line_being_written_by_a_live_writer_is_not_read_nor_called_torn(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    writer = SegmentWriter(tmp_path, "assignments", "shop")
    writer.append(json_line(assignment("r1", "A", at(0), "u1")), DAY)
    assert writer.path is not None
    with open(writer.path, "a", encoding="utf-8") as half:  # the second half is still to come
        half.write(json_line(assignment("r2", "A", at(0), "u2"))[:40])
    with caplog.at_level(logging.WARNING, logger="catalog.feedback.logs"):
        assert _requests(tmp_path) == 1
        assert [s.live for s in open_segments(tmp_path, "assignments", "shop")] == [True]
    assert "torn" not in caplog.text
    os.truncate(writer.path, os.path.getsize(writer.path) - 40)
    writer.close()


def test_a_crash_between_rename_and_removal_leaves_both_files_and_counts_once(tmp_path: Path) -> None:
    lines = [json_line(assignment(f"r{i}", "A", at(0.1 * i), f"u{i}")) for i in range(5)]
    path = _dead_segment(tmp_path, lines)
    kept = tmp_path / "kept.jsonl"
    shutil.copy(path, kept)
    assert seal_dead_segments(tmp_path, "assignments", "shop") == 1
    shutil.copy(kept, path)  # as if the crash came before the .jsonl was removed
    assert path.exists() and path.with_suffix(".parquet").exists()
    assert _requests(tmp_path) == 5

    before = path.with_suffix(".parquet").stat().st_mtime_ns
    SegmentWriter(tmp_path, "assignments", "shop").close()  # the next writer tidies up
    assert not path.exists() and path.with_suffix(".parquet").stat().st_mtime_ns == before
    assert _requests(tmp_path) == 5


def test_a_live_writers_segment_is_never_sealed_by_another(tmp_path: Path) -> None:
    writer = SegmentWriter(tmp_path, "assignments", "shop")
    writer.append(json_line(assignment("r1", "A", at(0), "u1")), DAY)
    assert seal_dead_segments(tmp_path, "assignments", "shop") == 0
    assert len(_files(tmp_path, "*.jsonl")) == 1
    writer.append(json_line(assignment("r2", "A", at(0), "u2")), DAY)
    writer.close()
    assert _requests(tmp_path) == 2


def test_a_failed_write_leaves_no_part_of_its_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = SegmentWriter(tmp_path, "assignments", "shop")
    writer.append(json_line(assignment("r1", "A", at(0), "u1")), DAY)
    real_write = os.write

    def half_then_full(fd: int, data: bytes | memoryview) -> int:
        real_write(fd, bytes(data[:10]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(OSError, match="No space"):
        writer.append(json_line(assignment("r2", "A", at(0), "u2")), DAY, fsync=True)
    monkeypatch.undo()
    writer.append(json_line(assignment("r3", "A", at(0), "u3")), DAY)
    writer.close()
    assert _requests(tmp_path) == 2
