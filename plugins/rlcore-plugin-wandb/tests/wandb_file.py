"""Read what an offline W&B run wrote (its ``run-ID.wandb`` file) back as records."""

import json
import struct
from pathlib import Path

BLOCK, HEADER = 32768, 7  # a LevelDB-style log: 32 KiB blocks, 7-byte record headers
FULL, FIRST, LAST = 1, 2, 4


def records(path: Path) -> list:
    """Every protobuf ``Record`` in the file, in order."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    out, pos, chunks = [], HEADER, b""
    while pos + HEADER <= len(data):
        if BLOCK - pos % BLOCK < HEADER:  # too little room left in the block: padding
            pos += BLOCK - pos % BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        if kind == 0:
            break
        chunks += data[pos + HEADER:pos + HEADER + length]
        pos += HEADER + length
        if kind in (FULL, LAST):
            record = pb.Record()
            record.ParseFromString(chunks)
            out.append(record)
            chunks = b""
    return out


def read_run(run_dir: Path) -> dict:
    """The run id, config, history rows, summary and exit code of each offline run under
    ``run_dir/wandb``, oldest first."""
    runs = []
    for file in sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb")):
        run = {"id": None, "config": {}, "history": [], "summary": {}, "exit_code": None}
        for record in records(file):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                run["id"] = record.run.run_id
                run["config"].update({i.key: json.loads(i.value_json)
                                      for i in record.run.config.update})
            elif kind == "config":
                run["config"].update({i.key: json.loads(i.value_json) for i in record.config.update})
            elif kind == "history":
                run["history"].append({i.key or "/".join(i.nested_key): json.loads(i.value_json)
                                       for i in record.history.item})
            elif kind == "summary":
                run["summary"].update({i.key or "/".join(i.nested_key): json.loads(i.value_json)
                                       for i in record.summary.update})
            elif kind == "exit":
                run["exit_code"] = record.exit.exit_code
        runs.append(run)
    return runs
