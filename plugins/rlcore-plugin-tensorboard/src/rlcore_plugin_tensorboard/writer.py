"""A thin TensorBoard event writer built on the ``tensorboard`` package alone (no torch)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from tensorboard.compat.proto.event_pb2 import Event, SessionLog
from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
from tensorboard.compat.proto.tensor_pb2 import TensorProto
from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
from tensorboard.compat.proto.types_pb2 import DT_STRING
from tensorboard.summary.writer.event_file_writer import EventFileWriter


class ScalarWriter:
    """Appends scalar (and text) summaries to one event file."""

    def __init__(self, logdir: Path) -> None:
        logdir.mkdir(parents=True, exist_ok=True)
        # TensorBoard reads a directory's event files in name order, and a name starts with the
        # second it was made (then host, pid and an unpadded counter, so "...10" < "...9"): wait
        # for a later second than every file already there, so that this one is read last.
        seconds = [int(p.name.split(".")[3]) for p in logdir.glob("events.out.tfevents.*")
                   if p.name.split(".")[3].isdigit()]
        while seconds and int(time.time()) <= max(seconds):
            time.sleep(0.05)
        self._file = EventFileWriter(str(logdir))

    def write_scalars(self, step: int, metrics: dict[str, float]) -> None:
        """One scalar summary per finite numeric metric."""
        values = [
            Summary.Value(tag=name, simple_value=float(value))
            for name, value in metrics.items()
            if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        ]
        if values:
            self._file.add_event(Event(wall_time=time.time(), step=step, summary=Summary(value=values)))

    def write_text(self, tag: str, text: str) -> None:
        """A text summary (shown in TensorBoard's Text tab)."""
        tensor = TensorProto(
            dtype=DT_STRING,
            string_val=[text.encode()],
            tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=1)]),
        )
        metadata = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="text"))
        value = Summary.Value(tag=tag, metadata=metadata, tensor=tensor)
        self._file.add_event(Event(wall_time=time.time(), step=0, summary=Summary(value=[value])))

    def purge_after(self, step: int) -> None:
        """Make TensorBoard drop the events after ``step`` in earlier files (a resumed run)."""
        self._file.add_event(Event(wall_time=time.time(), step=step + 1,
                                   session_log=SessionLog(status=SessionLog.START)))

    def close(self) -> None:
        """Flush and close the event file."""
        self._file.close()


def open_writer(run_dir: str, config: dict[str, Any], start_step: int = 0) -> ScalarWriter:
    """A writer under ``run_dir/tensorboard`` with the run's config recorded as text; a run
    resumed from ``start_step`` > 0 first purges what an earlier run logged after it."""
    writer = ScalarWriter(Path(run_dir) / "tensorboard")
    if start_step > 0:
        writer.purge_after(start_step)
    writer.write_text("config", "```\n" + json.dumps(config, indent=2, default=str) + "\n```")
    return writer


class TensorBoardLogger:
    """The ``tensorboard`` logger of ``run.loggers``: a :class:`ScalarWriter` under
    ``run_dir/tensorboard``; a resumed run first hides what the cut-short run logged after
    ``start_step``, so each step shows once."""

    def __init__(self, run_dir: str, config: dict[str, Any], start_step: int = 0) -> None:
        self.writer = open_writer(run_dir, config, start_step)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        """Each numeric metric as a scalar at ``step``."""
        self.writer.write_scalars(step, metrics)

    def close(self, summary: dict[str, Any]) -> None:
        """The summary as text, then flush and close."""
        self.writer.write_text("summary", "```\n" + json.dumps(summary, indent=2, default=str)
                               + "\n```")
        self.writer.close()
