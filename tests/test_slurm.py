"""The Slurm batch script: valid bash, and the commands it runs (with stand-ins for srun, ray, python)."""

from __future__ import annotations

import os
import stat
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "sweeps" / "slurm_study.sbatch"
SHIMS = {
    "scontrol": 'printf "gpu-a\\ngpu-b\\ngpu-c\\n"',
    "srun": 'echo "srun $*" >> "$LOG"; while [ "${1#-}" != "$1" ] || [ "$1" = gpu-a ] || [ "$1" = gpu-b ] '
            '|| [ "$1" = gpu-c ]; do shift; done; '
            'if [ "$1" = hostname ]; then echo "10.0.0.7 fe80::1"; else "$@"; fi',
    "ray": 'echo "ray $* on $SLURM_NODEID RAY_AUTH_MODE=$RAY_AUTH_MODE" >> "$LOG"',
    "python": 'echo "python $* RAY_ADDRESS=$RAY_ADDRESS" >> "$LOG"',
}


def test_script_is_valid_bash():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_script_starts_head_then_workers_then_the_study(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in SHIMS.items():
        path = bin_dir / name
        path.write_text(f"#!/bin/bash\n{body}\n")
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    venv = tmp_path / "venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "activate").write_text("")
    log = tmp_path / "log"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "LOG": str(log), "SLURM_SUBMIT_DIR": str(ROOT),
           "SLURM_JOB_NODELIST": "gpu-[a-c]", "SLURM_CPUS_PER_TASK": "8", "SLURM_GPUS_PER_TASK": "4",
           "SCANSHIFT_VENV": str(tmp_path / "venv"), "SCANSHIFT_RAY_WAIT": "0", "SLURM_NODEID": "0",
           "HOME": str(tmp_path)}
    subprocess.run(["bash", str(SCRIPT), "--shards", "/shared/shards", "--profile", "paper"], env=env, check=True,
                   timeout=60)
    deadline = time.time() + 10  # background `srun ... &` stand-ins may still be writing
    while time.time() < deadline and log.read_text().count("ray start") < 3:
        time.sleep(0.05)
    lines = log.read_text().splitlines()
    # the ray starts run in the background (as `srun ... --block &`), so their log order is not fixed
    heads = [ln for ln in lines if ln.startswith("ray start --head")]
    assert heads == ["ray start --head --node-ip-address=10.0.0.7 --port=6379 --num-cpus=8 --num-gpus=4 "
                     "--dashboard-host=127.0.0.1 --block on 0 RAY_AUTH_MODE=token"]
    joins = [ln for ln in lines if ln.startswith("ray start --address")]
    assert joins == ["ray start --address=10.0.0.7:6379 --num-cpus=8 --num-gpus=4 --block on 0 RAY_AUTH_MODE=token"] * 2
    assert {ln.split(" -w ")[1].split()[0] for ln in lines if ln.startswith("srun") and "ray start" in ln} == {
        "gpu-a", "gpu-b", "gpu-c"}
    assert "python sweeps/full_study.py --shards /shared/shards --profile paper RAY_ADDRESS=10.0.0.7:6379" in lines
    assert any(ln.startswith("ray get-auth-token --generate") for ln in lines)  # no token in $HOME yet
