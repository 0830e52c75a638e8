"""Where ranks meet: launch options, Slurm's environment, and which addresses listen."""

import json
import os
import subprocess
import sys

import pytest

from rlcore.launch import rendezvous
from rlcore.launch.launcher import torchrun_command
from rlcore.launch.rendezvous import LaunchError, Rendezvous, expand_nodelist, from_options


def listening(pid: int) -> list[str]:
    """``ADDR:PORT`` of every TCP socket that process ``pid`` listens on."""
    import psutil

    return [f"{c.laddr.ip}:{c.laddr.port}" for c in psutil.Process(pid).net_connections("tcp")
            if c.status == psutil.CONN_LISTEN]


def test_static_options_and_their_errors():
    assert from_options(None, None, None, None, None, env={}) == Rendezvous()
    r = from_options(2, 1, "10.0.0.5", None, None, env={})
    assert (r.nnodes, r.node_rank, r.endpoint) == (2, 1, "10.0.0.5:29500")
    with pytest.raises(LaunchError, match="--nnodes 2 needs --node-rank"):
        from_options(2, None, "h", None, None, env={})
    with pytest.raises(LaunchError, match=r"--node-rank 2 is outside 0\.\.1"):
        from_options(2, 2, "h", None, None, env={})
    with pytest.raises(LaunchError, match="--rdzv-endpoint replaces"):
        from_options(2, 0, "h", None, "h:1", env={})
    with pytest.raises(LaunchError, match="expected HOST:PORT"):
        from_options(2, None, None, None, "node01", env={})
    r = from_options(2, None, None, None, "node01:1234", env={})
    assert (r.node_rank, r.master_addr, r.master_port) == (None, "node01", 1234)


def test_slurm_environment_gives_node_rank_world_and_master():
    assert expand_nodelist("gpu[01-03,7],login1") == ["gpu01", "gpu02", "gpu03", "gpu7", "login1"]
    env = {"SLURM_STEP_ID": "0", "SLURM_NTASKS": "2", "SLURM_PROCID": "1",
           "SLURM_JOB_NODELIST": "gpu[07-08]", "SLURM_JOB_ID": "4242"}
    r = from_options(None, None, None, None, None, env=env)
    assert (r.nnodes, r.node_rank, r.master_addr) == (2, 1, "gpu07")
    assert r.master_port == 29500 + 10 + 4242 and r.source == "Slurm job 4242"
    r = from_options(None, None, None, None, None,
                     env={**env, "MASTER_ADDR": "10.1.1.1", "MASTER_PORT": "4000"})
    assert (r.master_addr, r.master_port) == ("10.1.1.1", 4000)
    # A batch script (no srun step) or one task is not a multi-node run; options win over Slurm.
    assert from_options(None, None, None, None, None,
                        env={k: v for k, v in env.items() if k != "SLURM_STEP_ID"}).nnodes == 1
    assert from_options(1, None, None, None, None, env=env).nnodes == 1


def test_torchrun_uses_the_hosted_store_and_never_hosts_one():
    cmd = torchrun_command(2, "logs", ["--experiment", "x"],
                           Rendezvous(2, 1, "10.0.0.5", 29500))
    assert cmd[1:3] == ["-m", "rlcore.launch.torchrun"]
    assert cmd[cmd.index("--rdzv-endpoint") + 1] == "10.0.0.5:29500"
    assert cmd[cmd.index("--rdzv-conf") + 1] == "is_host=false"
    assert cmd[cmd.index("--nnodes") + 1] == "2"


def test_hosted_store_listens_on_its_address_only():
    hosted = rendezvous.host_store("127.0.0.1", 0)
    try:
        on_port = [a for a in listening(os.getpid()) if a.endswith(f":{hosted.port}")]
        assert on_port == [f"127.0.0.1:{hosted.port}"]  # not *:PORT
        hosted.store.set("k", "v")
        client = __import__("torch").distributed.TCPStore("127.0.0.1", hosted.port, None, False)
        assert client.get("k") == b"v"
        with pytest.raises(LaunchError, match="must be an address of node 0"):
            rendezvous.host_store("127.0.0.1", hosted.port)  # taken
        assert rendezvous.host_store("127.0.0.1", hosted.port, required=False) is None
    finally:
        hosted.close()


ONE_PROCESS = """
import json, os, psutil
from rlcore.runtime import distributed
print(json.dumps({"group": distributed.init(30), "listening": [
    c.laddr.ip for c in psutil.Process().net_connections("tcp") if c.status == psutil.CONN_LISTEN]}))
"""


def test_one_process_opens_no_rendezvous_socket(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env["TORCH_EXTENSIONS_DIR"] = str(tmp_path)
    out = subprocess.run([sys.executable, "-c", ONE_PROCESS], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["group"] == [0, 1]
    # No TCP store at all; gloo's own transport (if any) stays on the loopback interface.
    assert all(ip.startswith("127.") or ip == "::1" for ip in result["listening"]), result
