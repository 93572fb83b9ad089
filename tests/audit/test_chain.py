"""The hash chain on disk: tampering is found and named, rotation and restarts keep the chain."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import pytest

from mcpgate.audit import AuditLog, rotated_files, verify_files
from mcpgate.audit.chain import ZERO_HASH, seal, unseal

from .factory import lines_of, make_exchange, write_lines, write_log


def _files(path: Path) -> list[str]:
    return [*rotated_files(str(path)), str(path)]


def test_a_fresh_log_verifies(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 25)
    report = verify_files([str(path)])
    assert report.ok and report.truncated_tail is None
    assert (report.records, report.first_seq, report.last_seq) == (25, 1, 25)
    assert report.anchor == ZERO_HASH
    genesis = json.loads(lines_of(path)[0])
    assert genesis["type"] == "genesis" and genesis["continues"] is None and genesis["seq"] == 0


def test_each_line_hash_covers_prev_and_the_canonical_bytes(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 3)
    lines = lines_of(path)
    for before, line in itertools.pairwise(lines):
        s = unseal(line.rstrip(b"\n"))
        assert s is not None and s.intact
        assert s.record["prev"] == json.loads(before)["hash"]
        assert seal(dict(s.record))[0] == line


def test_an_edited_line_is_found(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 10)
    lines = lines_of(path)
    lines[4] = lines[4].replace(b'"decision":"allow"', b'"decision":"deny"')
    write_lines(path, lines)
    report = verify_files([str(path)])
    assert not report.ok and report.problem is not None
    assert (report.problem.line, report.problem.kind) == (5, "edited")
    assert report.problem.file.endswith("audit.jsonl")


def test_an_edited_and_rehashed_line_breaks_the_next_link(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 10)
    lines = lines_of(path)
    s = unseal(lines[4].rstrip(b"\n"))
    assert s is not None
    forged = dict(s.record, principal="spiffe://cluster.local/ns/other/sa/x")
    lines[4] = seal(forged)[0]
    write_lines(path, lines)
    report = verify_files([str(path)])
    assert report.problem is not None
    assert (report.problem.line, report.problem.kind) == (6, "edited")
    assert ":5" in report.problem.detail


def test_a_deleted_line_is_found(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 10)
    lines = lines_of(path)
    del lines[5]  # seq 5
    write_lines(path, lines)
    report = verify_files([str(path)])
    assert report.problem is not None
    assert (report.problem.line, report.problem.kind) == (6, "deleted")
    assert "record 5 is missing" in report.problem.detail


def test_swapped_lines_are_reported_as_reordered(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 10)
    lines = lines_of(path)
    lines[3], lines[4] = lines[4], lines[3]
    write_lines(path, lines)
    report = verify_files([str(path)])
    assert report.problem is not None
    assert (report.problem.line, report.problem.kind) == (4, "reordered")


def test_a_removed_genesis_line_is_found(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 3)
    write_lines(path, lines_of(path)[1:])
    report = verify_files([str(path)])
    assert report.problem is not None
    assert (report.problem.line, report.problem.kind) == (1, "deleted")


def test_a_cut_last_line_is_a_truncated_tail_not_tampering(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 5)
    with open(path, "ab") as fh:
        fh.write(b'{"args_digest":"sha256:ab')
    report = verify_files([str(path)])
    assert report.ok
    assert report.truncated_tail is not None
    assert (report.truncated_tail.line, report.truncated_tail.kind) == (7, "truncated tail")
    assert report.last_seq == 5


def test_rotation_by_size_keeps_the_chain_across_files(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 40, rotate_bytes=4000)
    files = _files(path)
    assert len(files) >= 4
    for f in files:
        assert os.path.getsize(f) <= 4000 or len(lines_of(f)) <= 2
    report = verify_files(files)
    assert report.ok and (report.records, report.first_seq, report.last_seq) == (40, 1, 40)
    # every file after the first names the file it continues and links to its last hash
    for older, newer in itertools.pairwise(files):
        genesis = json.loads(lines_of(newer)[0])
        assert genesis["continues"] == os.path.basename(older)
        assert genesis["prev"] == json.loads(lines_of(older)[-1])["hash"]
    # the order the files are given in does not matter
    assert verify_files(list(reversed(files))).ok


def test_rotation_by_time_keeps_the_chain(tmp_path: Path) -> None:
    now = [1_000_000_000_000]
    path = tmp_path / "audit.jsonl"
    log = AuditLog.from_config({"path": str(path), "rotate_interval_s": 60, "rotate_bytes": None},
                               clock=lambda: now[0], wall_clock=lambda: 1_700_000_000_000_000_000 + now[0])
    log.start()
    for i in range(1, 4):
        log.record(make_exchange(i))
    assert log.flush(5)
    now[0] += 61 * 1_000_000_000
    for i in range(4, 6):
        log.record(make_exchange(i))
    assert log.flush(5)
    log.close()
    files = _files(path)
    assert len(files) == 2
    assert "-20231114T" in os.path.basename(files[0])
    assert verify_files(files).ok and verify_files(files).records == 5


def test_a_removed_middle_file_is_found(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 40, rotate_bytes=4000)
    files = _files(path)
    removed = files[1]
    os.unlink(removed)
    report = verify_files(_files(path))
    assert report.problem is not None
    assert report.problem.kind == "deleted"
    assert report.problem.line == 1
    assert report.problem.file == files[2]
    assert os.path.basename(removed) in report.problem.detail
    missing = json.loads(lines_of(files[2])[0])["seq"]
    first_missing = json.loads(lines_of(files[0])[-1])["seq"] + 1
    assert f"records {first_missing}..{missing} are not in the set" in report.problem.detail


def test_keep_files_prunes_the_oldest_and_the_rest_still_verifies(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 40, rotate_bytes=4000, keep_files=2)
    files = _files(path)
    assert len(files) == 3
    report = verify_files(files)
    assert report.ok and report.last_seq == 40 and report.first_seq is not None and report.first_seq > 1
    assert report.anchor != ZERO_HASH


def test_a_restart_continues_the_chain_and_drops_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 5)
    with open(path, "ab") as fh:
        fh.write(b'{"args_digest":"sha256:0123')  # a write cut by a crash, never acknowledged
    log = write_log(path, 5, start=6)
    assert log.acked_seq == 10
    lines = [json.loads(x) for x in lines_of(path)]
    assert [x["type"] for x in lines] == ["genesis"] + ["op"] * 5 + ["resume"] + ["op"] * 5
    assert lines[6]["torn_bytes"] == len(b'{"args_digest":"sha256:0123')
    report = verify_files([str(path)])
    assert report.ok and report.truncated_tail is None and report.records == 10


def test_a_restart_after_rotation_continues_from_the_newest_rotated_file(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 20, rotate_bytes=4000)
    first = json.loads(lines_of(path)[0])["seq"] + 1
    # as if the process died between renaming the active file and creating the next one
    os.rename(path, tmp_path / f"audit-20300101T000000Z-{first:012d}.jsonl")
    write_log(path, 3, start=21, rotate_bytes=4000)
    assert json.loads(lines_of(path)[0])["continues"] == f"audit-20300101T000000Z-{first:012d}.jsonl"
    report = verify_files(_files(path))
    assert report.ok and report.last_seq == 23


def test_a_tampered_last_line_refuses_to_continue(tmp_path: Path) -> None:
    from mcpgate.errors import AuditUnavailable

    path = tmp_path / "audit.jsonl"
    write_log(path, 3)
    lines = lines_of(path)
    lines[-1] = lines[-1].replace(b'"allow"', b'"deny"')
    write_lines(path, lines)
    log = AuditLog.from_config({"path": str(path)})
    with pytest.raises(AuditUnavailable, match="not an intact record"):
        log.start()


def test_a_file_cut_mid_record_inside_a_set_is_not_a_crash_tail(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 40, rotate_bytes=4000)
    files = _files(path)
    with open(files[1], "r+b") as fh:
        size = fh.seek(0, os.SEEK_END)
        fh.truncate(size - 30)
    report = verify_files(files)
    assert report.problem is not None
    assert report.problem.kind == "deleted" and report.problem.file == files[1]
    assert report.truncated_tail is None
