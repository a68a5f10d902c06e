"""The job's CSV output is replaced in one step, so a reader never sees half a table."""

from __future__ import annotations

import csv

from consumer.sinks import write_csv_atomically

HEADER = ("month", "logins", "successful", "failed")


def test_a_reader_of_the_old_file_keeps_the_whole_old_table(tmp_path):
    path = tmp_path / "out" / "monthly_logins.csv"
    write_csv_atomically(path, HEADER, [("2024-01", 3, 2, 1)])
    with path.open(newline="") as old_reader:
        write_csv_atomically(path, HEADER, [("2024-01", 5, 4, 1), ("2024-02", 1, 1, 0)])
        # The open handle still reads the complete old file: it was replaced, not rewritten.
        assert list(csv.reader(old_reader)) == [list(HEADER), ["2024-01", "3", "2", "1"]]
    with path.open(newline="") as reader:
        assert list(csv.reader(reader)) == [
            list(HEADER),
            ["2024-01", "5", "4", "1"],
            ["2024-02", "1", "1", "0"],
        ]
    assert sorted(p.name for p in path.parent.iterdir()) == ["monthly_logins.csv"]  # no temp


def test_a_replayed_batch_writes_the_same_bytes(tmp_path):
    path = tmp_path / "t.csv"
    rows = [("2024-03", 10, 7, 3)]
    write_csv_atomically(path, HEADER, rows)
    first = path.read_bytes()
    write_csv_atomically(path, HEADER, rows)
    assert path.read_bytes() == first == b"month,logins,successful,failed\r\n2024-03,10,7,3\r\n"
