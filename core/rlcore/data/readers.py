"""File readers: the pluggable step that turns ``dataset.path`` into rows.

A reader is ``fn(path, config) -> list[Row]`` registered under a name with the file
suffixes it reads (or ``directory=True`` with a ``detect(path)`` test for folders).
``dataset.format`` picks one by name; left null, the path's suffix or folder decides.
Built in: ``jsonl``, ``json``, ``parquet`` (:mod:`rlcore.data.sources`), ``csv`` and
``hf_disk`` (a HF ``datasets`` folder written by ``save_to_disk``). A plugin adds one
by calling :func:`register_reader` in its top-level module. No torch import here.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlcore.data.sources import Row, RowRef, read_rows
from rlcore.errors import DataError
from rlcore.plugins.lookup import did_you_mean

ReadFn = Callable[[Path, Any], list[Row]]


@dataclass(frozen=True)
class Reader:
    """A named file reader: the suffixes it reads, or a test for the folders it reads."""

    name: str
    read: ReadFn | str  # the function, or "module:attr" imported when first used
    suffixes: tuple[str, ...] = ()
    directory: bool = False
    detect: Callable[[Path], bool] | None = None
    doc: str = ""

    def load(self) -> ReadFn:
        """The read function (imported on first use when given as ``"module:attr"``)."""
        if isinstance(self.read, str):
            from rlcore.plugins.records import load_object

            return load_object(self.read)
        return self.read

    def accepts(self, path: Path) -> bool:
        """Whether this reader claims ``path`` when no format is named."""
        if path.is_dir():
            return self.directory and (self.detect is None or self.detect(path))
        return path.suffix.lower() in self.suffixes


_READERS: dict[str, Reader] = {}


def register_reader(reader: Reader, override: bool = False) -> Reader:
    """Add ``reader``; a second reader under the same name or suffix needs ``override=True``."""
    if not override:
        if reader.name in _READERS and _READERS[reader.name] != reader:
            raise DataError(f"a file reader named {reader.name!r} is already registered; pass "
                            "override=True to register_reader to replace it")
        for other in _READERS.values():
            shared = set(other.suffixes) & set(reader.suffixes)
            if other.name != reader.name and shared:
                raise DataError(f"file reader {reader.name!r} claims {sorted(shared)}, which "
                                f"reader {other.name!r} reads; pass override=True to take them")
    if override:
        for other in list(_READERS.values()):
            taken = tuple(s for s in other.suffixes if s not in reader.suffixes)
            if other.name != reader.name and taken != other.suffixes:
                _READERS[other.name] = Reader(other.name, other.read, taken, other.directory,
                                              other.detect, other.doc)
    _READERS[reader.name] = reader
    return reader


def readers() -> dict[str, Reader]:
    """Every registered reader by name (plugins' readers included)."""
    _load_plugins()
    return dict(_READERS)


def _load_plugins() -> None:
    """Import installed plugins once, so readers they register at import time are present."""
    from rlcore.plugins.manager import get_manager

    get_manager()


def read_source(path: str | Path, format: str | None = None, config: Any = None) -> list[Row]:
    """Rows of ``path`` read by the reader named ``format``, or the one its suffix or folder picks.

    Raises DataError naming the path, what was expected and the readers available.
    """
    p = Path(path)
    available = readers()
    if format is not None:
        if format not in available:
            raise DataError(f"dataset.format {format!r} is not a registered file reader."
                            f"{did_you_mean(format, list(available))} Readers: "
                            f"{', '.join(sorted(available))}")
        reader = available[format]
    else:
        if not p.exists():
            raise DataError(f"{p}: no such file or folder; check the dataset 'path' setting")
        found = [r for r in available.values() if r.accepts(p)]
        if not found:
            raise DataError(_no_reader_message(p, available))
        reader = found[0]
    if not p.exists():
        raise DataError(f"{p}: no such file or folder; check the dataset 'path' setting")
    rows = reader.load()(p, config)
    if not rows:
        raise DataError(f"{p}: holds no rows; expected at least one row")
    return rows


def _no_reader_message(p: Path, available: dict[str, Reader]) -> str:
    suffixes = sorted({s for r in available.values() for s in r.suffixes})
    folders = sorted(f"{r.name} ({r.doc})" if r.doc else r.name
                     for r in available.values() if r.directory)
    if p.is_dir():
        return (f"{p}: is a folder that no file reader recognises; point 'path' at a file "
                f"({', '.join(suffixes)}) or at a folder one of these reads: "
                f"{', '.join(folders) or 'none'}; or name a reader with dataset.format")
    return (f"{p}: unsupported file type {p.suffix or '(none)'!r}; expected one of "
            f"{', '.join(suffixes)}, or name a reader with dataset.format "
            f"({', '.join(sorted(available))})")


# ---------------------------------------------------------------------- built-in readers


def _json_field(config: Any) -> str | None:
    return getattr(config, "json_field", None)


def read_json_family(path: Path, config: Any) -> list[Row]:
    """``.jsonl``, ``.json`` or ``.parquet`` through :func:`rlcore.data.sources.read_rows`."""
    return read_rows(path, _json_field(config))


def read_csv(path: Path, config: Any = None) -> list[Row]:
    """A CSV file with a header row; every value is a string. Rows are named by their line."""
    if path.is_dir():
        raise DataError(f"{path}: is a folder; the csv reader reads one .csv file")
    with path.open("r", encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise DataError(f"{path}: the file is empty; expected a header row, then rows") from None
        except csv.Error as e:
            raise DataError(f"{path} line 1: not readable as CSV ({e})") from None
        names = [h.strip() for h in header]
        if any(not n for n in names):
            raise DataError(f"{path} line 1: the header has an empty column name "
                            f"(column {names.index('') + 1}); name every column")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise DataError(f"{path} line 1: the header repeats column {dupes[0]!r}; "
                            "column names must be unique")
        rows = []
        while True:
            start = reader.line_num + 1
            try:
                values = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                raise DataError(f"{path} line {start}: not readable as CSV ({e})") from None
            if not values or all(not v.strip() for v in values):
                continue
            ref = RowRef(str(path), start, "line")
            if len(values) != len(names):
                raise ref.error(f"has {len(values)} fields, the header has {len(names)} "
                                f"({', '.join(names)}); quote values that hold commas")
            rows.append(Row(ref, dict(zip(names, values, strict=True))))
    return rows


def is_hf_disk_folder(path: Path) -> bool:
    """A folder written by ``datasets``' ``save_to_disk`` (a Dataset or a DatasetDict)."""
    return (path / "state.json").is_file() or (path / "dataset_dict.json").is_file()


def read_hf_disk(path: Path, config: Any = None) -> list[Row]:
    """A HF ``datasets`` folder from ``Dataset.save_to_disk``; needs ``pip install datasets``.

    A ``DatasetDict`` folder is refused with the split folders to point at instead.
    """
    if not path.is_dir():
        raise DataError(f"{path}: the hf_disk reader reads a folder written by datasets' "
                        "save_to_disk, not a file")
    if (path / "dataset_dict.json").is_file():
        splits = json.loads((path / "dataset_dict.json").read_text()).get("splits", [])
        raise DataError(f"{path}: holds a DatasetDict with splits {splits}; point 'path' at "
                        f"one split's folder, e.g. {path / (splits[0] if splits else 'train')}")
    try:
        import datasets
    except ImportError:
        raise DataError(f"{path}: reading a HF datasets folder needs the 'datasets' package; "
                        "install it with `pip install datasets`") from None
    try:
        ds = datasets.load_from_disk(str(path))
    except Exception as e:  # datasets raises several types for broken folders
        raise DataError(f"{path}: not a readable datasets folder ({type(e).__name__}: {e})") from None
    return [Row(RowRef(str(path), i, "row"), dict(r)) for i, r in enumerate(ds, start=1)]


for _reader in (
    Reader("jsonl", read_json_family, (".jsonl",), doc="one JSON object per line"),
    Reader("json", read_json_family, (".json",), doc="a list of objects (json_field: inside an object)"),
    Reader("parquet", read_json_family, (".parquet",), doc="needs pyarrow"),
    Reader("csv", read_csv, (".csv",), doc="header row, string values"),
    Reader("hf_disk", read_hf_disk, directory=True, detect=is_hf_disk_folder,
           doc="datasets' save_to_disk folder; needs datasets"),
):
    register_reader(_reader)
