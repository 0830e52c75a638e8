"""Read rows from local ``.jsonl``, ``.json`` and ``.parquet`` files, with errors for people.

Every row comes with a :class:`RowRef` (file plus line, item or row number) so that a
bad value is reported as ``data.jsonl line 12, field 'prompt': expected a string``.
No torch import here.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlcore.errors import DataError

SUPPORTED_SUFFIXES = (".jsonl", ".json", ".parquet")
ROLES = ("system", "user", "assistant", "tool")


@dataclass(frozen=True)
class RowRef:
    """Where a row came from: ``path`` and a 1-based ``line`` (JSONL), item or row number."""

    path: str
    number: int
    unit: str = "line"  # "line" (JSONL), "item" (JSON list), "row" (Parquet, embedded)

    def __str__(self) -> str:
        return f"{self.path} {self.unit} {self.number}"

    def error(self, message: str, field: str | None = None) -> DataError:
        """A DataError that names this row and, when given, the field."""
        where = f"{self}, field {field!r}" if field else str(self)
        return DataError(f"{where}: {message}")


@dataclass
class Row:
    """A raw row (a dict of JSON values) and where it came from."""

    ref: RowRef
    values: dict[str, Any]


def _type_name(value: Any) -> str:
    """``value``'s JSON type with an article: "a string", "an integer", "null"."""
    if value is None:
        return "null"
    name = {str: "string", int: "integer", float: "number", bool: "boolean",
            list: "list", dict: "object"}.get(type(value), type(value).__name__)
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_rows(path: str | Path, json_field: str | None = None) -> list[Row]:
    """Every row of a local ``.jsonl``, ``.json`` (a list of objects) or ``.parquet`` file.

    ``json_field`` picks the list inside a ``.json`` object (``{"data": [...]}``).
    Text is UTF-8, optionally after a byte order mark. Raises DataError for a missing,
    empty, special (FIFO, device), non-UTF-8 or malformed file.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such file; check the dataset 'path' setting")
    if p.is_dir():
        raise DataError(f"{p}: is a directory; point 'path' at a .jsonl, .json or .parquet file")
    kind = _special_kind(p)
    if kind is not None:
        raise DataError(f"{p}: is {kind}, not a regular file; rlcore reads a data file more than "
                        "once (every rank, and --dry-run first), so write the rows to a file")
    suffix = p.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DataError(
            f"{p}: unsupported file type {suffix or '(none)'!r}; expected one of "
            f"{', '.join(SUPPORTED_SUFFIXES)}"
        )
    if p.stat().st_size == 0:
        raise DataError(f"{p}: the file is empty; expected at least one row")
    if suffix == ".jsonl":
        rows = list(_read_jsonl(p))
    elif suffix == ".json":
        rows = _read_json(p, json_field)
    else:
        rows = _read_parquet(p)
    if not rows:
        raise DataError(f"{p}: the file holds no rows; expected at least one row")
    return rows


def _special_kind(p: Path) -> str | None:
    """What ``p`` is when it is not a regular file: "a named pipe (FIFO)", "a character device", ..."""
    mode = p.stat().st_mode
    kinds = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def _not_utf8(ref: RowRef, err: UnicodeDecodeError, offset: int) -> DataError:
    return ref.error(f"not valid UTF-8 (byte 0x{err.object[err.start]:02x}, byte {offset} of the "
                     "line); save the file as UTF-8")


def _read_jsonl(p: Path) -> Iterator[Row]:
    with p.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            ref = RowRef(str(p), lineno, "line")
            try:  # a UTF-8 byte order mark may start the file
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as e:
                raise _not_utf8(ref, e, e.start + 1) from None
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as e:
                raise ref.error(
                    f"malformed JSON at column {e.colno}: {e.msg}; expected one JSON object "
                    f"per line, got {_short(line.strip())}"
                ) from None
            if not isinstance(value, dict):
                raise ref.error(f"expected a JSON object, got {_type_name(value)}")
            yield Row(ref, value)


def _read_json(p: Path, json_field: str | None) -> list[Row]:
    raw = p.read_bytes()
    try:  # a UTF-8 byte order mark may start the file
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line_start = raw.rfind(b"\n", 0, e.start) + 1
        raise _not_utf8(RowRef(str(p), raw.count(b"\n", 0, e.start) + 1), e,
                        e.start - line_start + 1) from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(
            f"{p} line {e.lineno}: malformed JSON at column {e.colno}: {e.msg}"
        ) from None
    if isinstance(value, dict):
        if json_field is None:
            lists = [k for k, v in value.items() if isinstance(v, list)]
            raise DataError(
                f"{p}: expected a JSON list of rows; got an object. Set 'json_field' to the "
                f"key that holds the rows" + (f" (lists found under: {lists})" if lists else "")
            )
        if json_field not in value:
            raise DataError(f"{p}: 'json_field' {json_field!r} not found; keys: {sorted(value)}")
        value = value[json_field]
    if not isinstance(value, list):
        raise DataError(f"{p}: expected a JSON list of rows, got {_type_name(value)}")
    rows = []
    for i, item in enumerate(value, start=1):
        ref = RowRef(str(p), i, "item")
        if not isinstance(item, dict):
            raise ref.error(f"expected a JSON object, got {_type_name(item)}")
        rows.append(Row(ref, item))
    return rows


def _read_parquet(p: Path) -> list[Row]:
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - depends on the environment
        raise DataError(
            f"{p}: reading Parquet needs pyarrow; install it with `pip install rlcore[parquet]`"
        ) from None
    try:
        table = pq.read_table(p)
    except Exception as e:  # pyarrow raises several types for corrupt files
        raise DataError(f"{p}: not a readable Parquet file ({e})") from None
    return [Row(RowRef(str(p), i, "row"), r) for i, r in enumerate(table.to_pylist(), start=1)]


def rows_from_dicts(values: list[dict[str, Any]], name: str) -> list[Row]:
    """Wrap in-memory rows (the embedded task) so that they flow through the same checks."""
    return [Row(RowRef(name, i, "row"), v) for i, v in enumerate(values, start=1)]


# ---------------------------------------------------------------------- field checks


def require(row: Row, field: str, expected: str = "a value") -> Any:
    """The value of ``field``; a DataError naming row and field when it is missing."""
    if field not in row.values:
        raise row.ref.error(
            f"missing; expected {expected}. The row has keys {sorted(row.values)}", field
        )
    return row.values[field]


def check_str(row: Row, field: str, value: Any, allow_empty: bool = False) -> str:
    """``value`` if it is a string (non-empty unless ``allow_empty``), else a DataError."""
    if not isinstance(value, str):
        raise row.ref.error(
            f"expected a string, got {_type_name(value)} ({_short(value)})", field
        )
    if not allow_empty and not value:
        raise row.ref.error("expected a non-empty string, got ''", field)
    return value


def check_str_list(row: Row, field: str, value: Any) -> list[str]:
    """``value`` if it is a non-empty list of strings, else a DataError."""
    if not isinstance(value, list):
        raise row.ref.error(
            f"expected a list of strings, got {_type_name(value)} ({_short(value)})", field
        )
    if not value:
        raise row.ref.error("expected a non-empty list of strings, got []", field)
    for i, v in enumerate(value):
        check_str(row, f"{field}[{i}]", v)
    return value


def check_messages(row: Row, field: str, value: Any) -> list[dict[str, str]]:
    """``value`` if it is a non-empty chat: a list of ``{"role", "content"}`` string objects."""
    if not isinstance(value, list):
        raise row.ref.error(
            "expected a list of messages like [{\"role\": \"user\", \"content\": \"...\"}], "
            f"got {_type_name(value)} ({_short(value)})",
            field,
        )
    if not value:
        raise row.ref.error("expected a non-empty list of messages, got []", field)
    out = []
    for i, m in enumerate(value):
        name = f"{field}[{i}]"
        if not isinstance(m, dict):
            raise row.ref.error(
                f"expected a message object with 'role' and 'content', got {_type_name(m)}", name
            )
        for k in ("role", "content"):
            if k not in m:
                raise row.ref.error(f"missing; expected a string. The message has keys "
                                    f"{sorted(m)}", f"{name}.{k}")
        role = check_str(row, f"{name}.role", m["role"])
        if role not in ROLES:
            raise row.ref.error(f"expected one of {', '.join(ROLES)}, got {role!r}",
                                f"{name}.role")
        content = check_str(row, f"{name}.content", m["content"], allow_empty=True)
        out.append({**m, "role": role, "content": content})
    return out
