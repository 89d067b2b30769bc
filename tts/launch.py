"""Multi-process training: a stage re-launches itself under torchrun (DDP).

With `devices > 1` a training stage replaces its own process by torchrun running the same
module with the same arguments, `devices` processes on this machine. Alone it uses a
standalone (single-node) rendezvous; for several nodes, run the same `dvc repro` on every
node with torchrun's own environment variables set (`PET_NNODES=2 PET_NODE_RANK=0|1
PET_RDZV_ENDPOINT=host:29500 PET_RDZV_ID=job`; README, "Multi-node training"): torchrun
reads them as --nnodes, --node-rank, --rdzv-endpoint and --rdzv-id.
"""

from __future__ import annotations

import os
import sys

# torchrun settings read from the environment (its `PET_<OPTION>` convention); any of them
# replaces the single-node standalone rendezvous with the given one.
MULTI_NODE_ENV = frozenset({"PET_NNODES", "PET_RDZV_ENDPOINT", "PET_RDZV_BACKEND",
                            "PET_RDZV_ID", "PET_NODE_RANK", "PET_MASTER_ADDR"})


def torchrun_command(devices: int, module: str, args: list[str], environ) -> list[str]:
    """`python -m module args` under torchrun, `devices` processes on this node;
    standalone unless the environment names a rendezvous (MULTI_NODE_ENV), which torchrun
    then reads itself."""
    rendezvous = [] if MULTI_NODE_ENV & set(environ) else ["--standalone"]
    return [sys.executable, "-m", "torch.distributed.run", *rendezvous,
            f"--nproc_per_node={devices}", "-m", module, *args]


def relaunch_under_torchrun(devices: int, module: str) -> None:
    """Replace this process by torchrun running `module` with this command line's
    arguments when `devices > 1` and torchrun has not started it already."""
    if devices > 1 and "LOCAL_RANK" not in os.environ:
        os.execv(sys.executable, torchrun_command(devices, module, sys.argv[1:], os.environ))
