"""How a sweep starts or joins Ray (used by `tune_adapter`, the module that runs Ray Tune).

A sweep joins the Ray at RAY_ADDRESS, or one `ray start` left on this host, or the one already
connected; otherwise it starts a local Ray for itself. Such a local Ray is tuned for a quick first
trial (Ray 2.60, measured in the README's "Quick start"):

- Its raylet starts one worker per CPU before the first task and, with `RAY_preload_python_modules`,
  those workers import torch and the trial code while the driver is still setting up Tune. Tune
  would never use them: it gives its trial actors a runtime env of their own (`PL_DISABLE_FORK`),
  and Ray hands prestarted workers only to work without one. So the raylet is started with Tune's
  variables in its environment (every worker of a local Ray inherits it) and, while the waves run,
  Tune's actors carry no runtime env (`tune_actors_inherit_env`): same variables, ready workers.
  Those workers wait 10 s, not Ray's 1 s, before an idle one is stopped (`WARM_ENV`): once Tune's
  placement groups hold the CPUs, Ray stops idle workers in excess, often before a busy driver has
  asked for them. This is done only when every prestarted worker will host a trial (a worker
  importing torch holds ~0.7 GB) and Tune would pass nothing else; otherwise no worker is prestarted,
  since idle ones only take CPU from the workers the trials do use. Only while the connected Ray is
  still that one (its session): a Ray the user connects to in its place since is left as it is.
- `ray.init` waits for its node in 20 ms steps instead of Ray's 1 s ones (`_node_wait_in_short_steps`):
  the raylet starts those workers only once the driver has connected.
- Its processes retry a local socket every 20 ms instead of every 1 s (`SOCKET_RETRY_ENV`, the same 10 s
  of sleeps in all): the raylet's first connection to the object store it has just started often
  comes too early.
- Tune keeps 2 x CPUs (at least 16) trials pending instead of 200 (`pending_trials_env`).
On a cluster nothing is changed. Settings the user made in the environment always win.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import ray

from scanshift_ray.plan import concurrency
from scanshift_ray.study import Cell

NO_PRESTART_ENV = {"RAY_enable_worker_prestart": "0", "RAY_prestart_worker_first_driver": "0"}
PRELOAD = "torch,scanshift_ray.tune_adapter,scanshift_ray.trial"  # what a trial's worker imports first
# The raylet of a warm local Ray. OMP_NUM_THREADS: Ray sets it to 1 for a 1-CPU trial's worker, but only
# once the actor is created, after the preloaded libraries have sized their thread pools (numpy's OpenBLAS
# to every core). Idle threshold: once placement groups hold the CPUs (Tune reserves one per trial just
# before it creates the trial's actor), the raylet stops workers idle for more than 1 s; a driver setting
# up Tune on a busy machine is often later than that, and its trials then waited for cold workers
# (1.4-2.9 s later first trials). Idle workers in excess now wait 10 s.
WARM_ENV = {"RAY_preload_python_modules": PRELOAD, "OMP_NUM_THREADS": "1",
            "RAY_idle_worker_killing_time_threshold_ms": "10000"}
# Ray 2.60 connects a process to a local socket (the raylet to its object store, a worker to its raylet)
# in up to 10 tries 1 s apart, and a worker asks its raylet for the system config the same way. The
# raylet starts its store in a thread and connects at once; on a busy machine the first try often comes
# before the store listens, and the raylet registers 1 s later (the bimodal 1 s step of the quick-start
# figures). The same 10 s of sleeps, in 20 ms steps (Ray logs each retry after the second one):
SOCKET_RETRY_ENV = {"RAY_raylet_client_connect_timeout_milliseconds": "20",
                    "RAY_raylet_client_num_connect_attempts": "500"}


@contextmanager
def env_defaults(values: Mapping[str, str]) -> Iterator[None]:
    """Set the environment variables of `values` that the user has not set, for the block only."""
    added = {k: v for k, v in values.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


_started: str | None = None  # session name of the local Ray this process started
_inherited: dict[str, str] = {}  # Tune's actor variables given to that Ray's raylet (a warm one)


def would_start_local() -> bool:
    """Whether `ray.init()` starts a new local Ray: no RAY_ADDRESS and no cluster that `ray start` left
    on this host (which Ray would join, e.g. on a cluster's head node)."""
    try:
        from ray._private.services import canonicalize_bootstrap_address

        return canonicalize_bootstrap_address(os.environ.get("RAY_ADDRESS")) is None  # type: ignore[arg-type]
    except Exception:  # a private helper of Ray 2.60: if it moves or fails, assume a cluster (Tune's defaults)
        return False


def _tune_actor_env() -> dict[str, str] | None:
    """The env vars Tune 2.60 gives its trial actors (`ray.tune.execution.class_cache`): its defaults and
    those of the variables it passes on (credentials, Ray Train settings) that are set; None if that
    module no longer looks as expected."""
    try:
        from ray.tune.execution import class_cache

        default = dict(class_cache.DEFAULT_ENV_VARS)
        passed = {k: os.environ[k] for k in class_cache.ENV_VARS_TO_PROPAGATE if k in os.environ}
    except (ImportError, AttributeError, TypeError):
        return None
    return {**default, **passed}


def _local_env(warm: bool) -> tuple[dict[str, str], dict[str, str]]:
    """(environment for the raylet of a local Ray, Tune's actor variables in it): warm workers when asked
    and possible (see the module doc); not when Tune would pass on more than its defaults, or the user
    set one of them."""
    # both retry settings or neither: one of them alone (the user's) with ours would change the total wait
    sockets = {} if any(k in os.environ for k in SOCKET_RETRY_ENV) else SOCKET_RETRY_ENV
    tune_env = _tune_actor_env()
    if not warm or tune_env is None or any(k in os.environ for k in tune_env):
        return {**NO_PRESTART_ENV, **sockets}, {}
    return {**tune_env, **WARM_ENV, **sockets}, tune_env


def _ray_cpus() -> int:
    """The CPU count a local Ray gives its node (and prestarts workers for): it respects cgroup quotas."""
    try:
        from ray._private.utils import get_num_cpus

        return int(get_num_cpus())
    except Exception:  # a private helper of Ray 2.60
        return os.cpu_count() or 1


def fills_every_cpu(cells: Sequence[Cell], gpus_per_trial: float | None = None,
                    max_concurrent: int | None = None) -> bool:
    """Whether running `cells` keeps one trial per CPU of this machine busy, so every worker a local Ray
    prestarts will host one."""
    import torch

    cpus = _ray_cpus()
    return min(len(cells), concurrency(cells, cpus, torch.cuda.device_count(), gpus_per_trial,
                                       max_concurrent)) >= cpus


def _session() -> str | None:
    """The connected Ray's session name (unique per Ray started), or None."""
    try:
        return str(ray.get_runtime_context().get_session_name())
    except Exception:
        return None


def started_here() -> bool:
    """Whether the connected Ray is the one this process started itself (not one the user connected to
    or started in its place since)."""
    return _started is not None and ray.is_initialized() and _session() == _started


@contextmanager
def _node_wait_in_short_steps(active: bool) -> Iterator[None]:
    """While `ray.init` starts a local Ray: Ray 2.60 asks the GCS for its new node (`services.get_node`)
    in a loop whose C++ side sleeps 1 s whenever the raylet has not registered yet, and the raylet's
    prestarted workers start only when the driver connects after that. So first poll the GCS's node
    table every 20 ms (for up to 10 s), then ask as Ray does. If Ray's internals differ, Ray's own
    call runs unchanged."""
    try:
        from ray._private import services, state

        original = services.get_node
    except (ImportError, AttributeError):
        active = False
    if not active:
        yield
        return

    def get_node(gcs_address: str, node_id: str) -> dict:
        try:
            table = state.GlobalState()
            table._initialize_global_state(services._get_gcs_client_options(gcs_address))
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and all(n.get("NodeID") != node_id for n in table.node_table()):
                time.sleep(0.02)
            table.disconnect()
        except Exception:  # anything unexpected: Ray's own wait below
            pass
        return original(gcs_address, node_id)

    services.get_node = get_node
    try:
        yield
    finally:
        services.get_node = original


def start_ray(verbose: int = 1, warm_workers: bool = False) -> bool:
    """Connect to the Ray at RAY_ADDRESS, or the one `ray start` left on this host, or the one already
    connected, else start a local one (prestarted workers that import torch when `warm_workers`, i.e.
    when the sweep will keep one trial per CPU busy; none otherwise). Returns `started_here()`."""
    global _started, _inherited
    if ray.is_initialized():
        return started_here()
    local = would_start_local()
    env, inherited = _local_env(warm_workers) if local else ({}, {})
    with env_defaults(env), _node_wait_in_short_steps(local):  # the raylet reads env at start, its workers inherit it
        ray.init(address=os.environ.get("RAY_ADDRESS"), include_dashboard=False, configure_logging=False,
                 log_to_driver=verbose > 1)
    _started, _inherited = (_session(), inherited) if local else (None, {})
    return started_here()


@contextmanager
def tune_actors_inherit_env() -> Iterator[None]:
    """While the block runs, Tune's trial actors carry no runtime env of their own (so a warm local Ray's
    prestarted workers can host them); their variables reach them through the raylet's environment.
    Does nothing unless the connected Ray is such a Ray started here, and Tune would pass exactly what
    its raylet was given."""
    saved = None
    if _inherited and started_here() and _tune_actor_env() == _inherited:
        try:
            from ray.tune.execution import class_cache

            saved = dict(class_cache.DEFAULT_ENV_VARS)
            class_cache.DEFAULT_ENV_VARS.clear()
        except (ImportError, AttributeError, TypeError):  # Tune's table moved or became read-only
            saved = None
    try:
        yield
    finally:
        if saved is not None:
            class_cache.DEFAULT_ENV_VARS.update(saved)


def pending_trials_env(local: bool, cpus: float) -> dict[str, str]:
    """Tune's cap on trials waiting for resources. Tune keeps 200 pending so an autoscaler sees the demand;
    on a local Ray nothing scales, and creating 200 trials before the first starts delayed it by ~1 s."""
    return {"TUNE_MAX_PENDING_TRIALS_PG": str(max(16, 2 * int(cpus)))} if local else {}
