"""Reading data files: encodings, byte order marks and files that are not regular files."""

from __future__ import annotations

import json
import os

import pytest

from rlcore.data.sources import read_rows
from rlcore.errors import DataError

GOOD = json.dumps({"prompt": "1+2=", "answer": "3"}).encode()


def test_invalid_utf8_names_the_file_and_line(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_bytes(GOOD + b"\n" + GOOD + b"\n" + b'{"prompt": "caf\xe9", "answer": "3"}\n')
    with pytest.raises(DataError) as err:
        read_rows(path)
    assert str(err.value).startswith(f"{path} line 3: not valid UTF-8 (byte 0xe9, byte 16 of the line)")


def test_invalid_utf8_in_a_json_file_names_the_line(tmp_path):
    path = tmp_path / "data.json"
    path.write_bytes(b'[\n  {"prompt": "1+2=", "answer": "3"},\n  {"prompt": "\xff"}\n]\n')
    with pytest.raises(DataError, match=rf"^{path} line 3: not valid UTF-8 \(byte 0xff, byte 15 "):
        read_rows(path)


@pytest.mark.parametrize("name, body", [
    ("data.jsonl", GOOD + b"\n" + GOOD + b"\n"),
    ("data.json", b"[" + GOOD + b", " + GOOD + b"]"),
])
def test_a_utf8_byte_order_mark_is_accepted(tmp_path, name, body):
    path = tmp_path / name
    path.write_bytes(b"\xef\xbb\xbf" + body)
    rows = read_rows(path)
    assert [r.values for r in rows] == [{"prompt": "1+2=", "answer": "3"}] * 2


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_fifo_is_reported_as_such_without_blocking(tmp_path):
    path = tmp_path / "data.jsonl"
    os.mkfifo(path)
    with pytest.raises(DataError, match=r"is a named pipe \(FIFO\), not a regular file"):
        read_rows(path)


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="needs /dev/null")
def test_a_device_is_reported_as_such_not_as_empty():
    with pytest.raises(DataError, match=r"^/dev/null: is a character device, not a regular file"):
        read_rows("/dev/null")
