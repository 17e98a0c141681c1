"""How a sweep starts or joins Ray: the raylet settings of a Ray it starts itself, Tune's actor env."""

import os
import subprocess
import sys
import tempfile
import textwrap

import pytest
from conftest import make_cell

from scanshift_ray import local_ray, results, tune_adapter

ray = pytest.importorskip("ray")
from ray._private import services  # noqa: E402
from ray.tune.execution import class_cache  # noqa: E402

GET_NODE = services.get_node

KEYS = ("RAY_enable_worker_prestart", "RAY_prestart_worker_first_driver", "TUNE_MAX_PENDING_TRIALS_PG",
        "RAY_preload_python_modules", "PL_DISABLE_FORK", "OMP_NUM_THREADS", "RAY_idle_worker_killing_time_threshold_ms",
        *local_ray.SOCKET_RETRY_ENV)
SOCKETS = {"RAY_raylet_client_connect_timeout_milliseconds": "20", "RAY_raylet_client_num_connect_attempts": "500"}


@pytest.fixture
def fake_ray(tmp_path, monkeypatch):
    """run_cells against a fake Ray and Tuner; records the environment at ray.init and at each fit, and
    the env vars Tune would give its actors during the fit."""
    seen: dict = {}
    started: list = []
    session = {"name": "session-1"}  # what the connected (fake) Ray calls itself

    class FakeTuner:
        def __init__(self, trainable, param_space, tune_config, run_config):
            self.ids = [v["cell_id"] for v in param_space["cell"]["grid_search"]]

        def fit(self):
            seen["fit"] = {k: os.environ.get(k) for k in KEYS}
            seen["actor_env"] = dict(class_cache.DEFAULT_ENV_VARS)
            if seen.get("raise"):
                raise KeyboardInterrupt
            for cid in self.ids:
                results.write_cell(tmp_path, [{"experiment": "main", "cell_id": cid}])

    monkeypatch.setattr(local_ray, "_started", None)
    monkeypatch.setattr(local_ray, "_inherited", {})
    monkeypatch.setattr(local_ray, "_session", lambda: session["name"] if started else None)
    monkeypatch.setattr(local_ray, "would_start_local", lambda: not os.environ.get("RAY_ADDRESS"))
    monkeypatch.setattr(ray, "is_initialized", lambda: bool(started))
    monkeypatch.setattr(ray, "init", lambda **kw: started.append(1) or seen.update(
        init={k: os.environ.get(k) for k in KEYS}, address=kw["address"]))
    monkeypatch.setattr(ray, "nodes", lambda: [])
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": float(os.cpu_count() or 1)})
    monkeypatch.setattr(tune_adapter.tune, "with_parameters", lambda fn, **kw: fn)
    monkeypatch.setattr(tune_adapter.tune, "with_resources", lambda fn, res: fn)
    monkeypatch.setattr(tune_adapter.tune, "Tuner", FakeTuner)
    for key in (*KEYS, "RAY_ADDRESS", *class_cache.ENV_VARS_TO_PROPAGATE):
        monkeypatch.delenv(key, raising=False)

    def run(n_cells: int, cpus: int, keep_ray: bool = False, fail: bool = False) -> dict:
        monkeypatch.setattr(local_ray, "_ray_cpus", lambda: cpus)
        monkeypatch.setattr(os, "cpu_count", lambda: cpus)
        if not keep_ray:
            started.clear()
        seen.clear()
        seen["raise"] = fail
        cells = [make_cell("xray-chest", "3", seed=s) for s in range(n_cells)]
        for cell in cells:  # a fresh results folder for each run
            (tmp_path / "main" / f"{cell.cell_id}.parquet").unlink(missing_ok=True)
        tune_adapter.run_cells(cells, tmp_path / "shards", tmp_path, verbose=0, log=lambda s: None)
        return dict(seen)

    run.session = session  # type: ignore[attr-defined]
    return run


def test_a_local_ray_with_a_trial_per_cpu_gets_warm_workers_tune_can_use(fake_ray):
    """Every CPU will host a trial: the raylet prestarts workers that import torch and the trial code and
    inherit Tune's variables, and Tune's actors carry no runtime env while the waves run (so Ray hands
    them those workers); afterwards Tune's own table and the environment are as before."""
    seen = fake_ray(n_cells=4, cpus=2)
    assert seen["init"] == {"RAY_enable_worker_prestart": None, "RAY_prestart_worker_first_driver": None,
                            "TUNE_MAX_PENDING_TRIALS_PG": None, "RAY_preload_python_modules": local_ray.PRELOAD,
                            "PL_DISABLE_FORK": "1", "OMP_NUM_THREADS": "1",
                            "RAY_idle_worker_killing_time_threshold_ms": "10000", **SOCKETS}
    assert seen["actor_env"] == {} and seen["fit"]["TUNE_MAX_PENDING_TRIALS_PG"] == "16"
    assert seen["fit"]["PL_DISABLE_FORK"] is None  # set for the raylet only, not left in the driver
    assert class_cache.DEFAULT_ENV_VARS == {"PL_DISABLE_FORK": "1"}
    assert not any(os.environ.get(k) for k in KEYS)
    assert services.get_node is GET_NODE  # the short-step node wait is Ray's own again


def test_a_local_ray_with_idle_cpus_starts_no_workers_ahead(fake_ray):
    """Fewer trials than CPUs (a worker importing torch holds ~0.7 GB): no prestarted workers at all,
    Tune's actors keep their runtime env."""
    seen = fake_ray(n_cells=2, cpus=12)
    assert seen["init"] == {"RAY_enable_worker_prestart": "0", "RAY_prestart_worker_first_driver": "0",
                            "TUNE_MAX_PENDING_TRIALS_PG": None, "RAY_preload_python_modules": None,
                            "PL_DISABLE_FORK": None, "OMP_NUM_THREADS": None,
                            "RAY_idle_worker_killing_time_threshold_ms": None, **SOCKETS}
    assert seen["actor_env"] == {"PL_DISABLE_FORK": "1"} and seen["fit"]["TUNE_MAX_PENDING_TRIALS_PG"] == "24"


def test_socket_retries_keep_rays_total_wait_and_the_users_own_setting(fake_ray, monkeypatch):
    """20 ms x 500 tries keeps Ray's own 1 s x 10 of sleeps (a process whose socket never appears fails no
    sooner than before); a user who set either of the two gets neither of ours, since one of each would
    change it."""
    ours = local_ray.SOCKET_RETRY_ENV
    assert int(ours["RAY_raylet_client_connect_timeout_milliseconds"]) * int(
        ours["RAY_raylet_client_num_connect_attempts"]) == 1000 * 10
    for key, other in (tuple(SOCKETS), tuple(SOCKETS)[::-1]):
        monkeypatch.setenv(key, "3")
        seen = fake_ray(n_cells=4, cpus=2)
        assert seen["init"][key] == "3" and seen["init"][other] is None
        assert seen["init"]["RAY_preload_python_modules"] == local_ray.PRELOAD  # the rest as usual
        assert os.environ.get(other) is None
        monkeypatch.delenv(key)


def test_rays_binaries_read_the_settings_given_to_its_processes():
    """Ray reads a setting `x` from RAY_x in each process; a name it no longer has would be ignored silently.
    The socket retries are in the raylet's and the core worker's (`_raylet`) binaries of the installed
    Ray, the idle threshold in the raylet's."""
    import ray._raylet

    for binary, keys in ((services.RAYLET_EXECUTABLE, [*SOCKETS, "RAY_idle_worker_killing_time_threshold_ms"]),
                         (ray._raylet.__file__, list(SOCKETS))):
        with open(binary, "rb") as f:
            data = f.read()
        assert all(k.encode() in data for k in keys), binary


def test_variables_tune_would_pass_on_keep_its_runtime_env(fake_ray, monkeypatch):
    """Tune passes credentials (AWS_*) to its actors through their runtime env, and a user may have set
    one of its variables: then nothing about Tune's actors is changed (and no worker is prestarted)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key")
    seen = fake_ray(n_cells=4, cpus=2)
    assert seen["init"]["RAY_enable_worker_prestart"] == "0" and seen["actor_env"] == {"PL_DISABLE_FORK": "1"}
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.setenv("PL_DISABLE_FORK", "0")
    seen = fake_ray(n_cells=4, cpus=2)
    assert seen["init"]["RAY_preload_python_modules"] is None and seen["actor_env"] == {"PL_DISABLE_FORK": "1"}


def test_user_settings_win_and_a_cluster_is_left_as_it_is(fake_ray, monkeypatch):
    first_driver = KEYS[1]
    monkeypatch.setenv(first_driver, "1")  # the user's own choice
    seen = fake_ray(n_cells=2, cpus=12)
    assert seen["init"]["RAY_enable_worker_prestart"] == "0" and seen["init"][first_driver] == "1"
    assert os.environ.get(first_driver) == "1"
    # a cluster (RAY_ADDRESS): nothing changed, Tune's 200 pending trials drive its autoscaler
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    seen = fake_ray(n_cells=4, cpus=2)
    assert seen["address"] == "10.0.0.1:6379" and seen["fit"]["TUNE_MAX_PENDING_TRIALS_PG"] is None
    assert seen["init"]["RAY_enable_worker_prestart"] is None and seen["actor_env"] == {"PL_DISABLE_FORK": "1"}
    assert all(seen["init"][k] is None for k in SOCKETS)  # a cluster's processes keep Ray's own retries


def test_a_ray_the_user_connected_in_its_place_is_not_taken_for_the_warm_one(fake_ray):
    """After a warm sweep the user shuts Ray down and connects to another (their own local one, or a
    cluster): the next sweep leaves Tune's actor env and pending trials alone, so its trials still get
    PL_DISABLE_FORK=1 from Tune."""
    assert fake_ray(n_cells=4, cpus=2)["actor_env"] == {}
    fake_ray.session["name"] = "session-2"  # the Ray connected now is a different one
    seen = fake_ray(n_cells=4, cpus=2, keep_ray=True)
    assert "init" not in seen and seen["actor_env"] == {"PL_DISABLE_FORK": "1"}
    assert seen["fit"]["TUNE_MAX_PENDING_TRIALS_PG"] is None
    fake_ray.session["name"] = "session-1"  # still connected to the warm Ray: a second sweep on it
    assert fake_ray(n_cells=4, cpus=2, keep_ray=True)["actor_env"] == {}


def test_tunes_table_is_restored_when_a_wave_is_interrupted(fake_ray):
    with pytest.raises(KeyboardInterrupt):
        fake_ray(n_cells=4, cpus=2, fail=True)
    assert class_cache.DEFAULT_ENV_VARS == {"PL_DISABLE_FORK": "1"}
    assert not any(os.environ.get(k) for k in KEYS)


def test_the_preloaded_modules_leave_cuda_alone():
    """Ray sets CUDA_VISIBLE_DEVICES for a trial only when its actor is created, after the warm worker
    imported PRELOAD: importing those modules must not touch CUDA."""
    probe = textwrap.dedent(f"""
        import torch
        def touched(*a, **k):
            raise SystemExit("CUDA touched at import")
        for name in ("device_count", "is_available", "init", "_lazy_init", "current_device"):
            setattr(torch.cuda, name, touched)
        for name in {local_ray.PRELOAD.split(",")[1:]!r}:
            __import__(name)
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stdout[-500:] + out.stderr[-2000:]


def test_a_ray_address_is_never_taken_for_a_local_ray(monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert not local_ray.would_start_local()
    monkeypatch.setenv("RAY_ADDRESS", "local")  # Ray's own word for "start one here"
    assert local_ray.would_start_local()


WARM_PROBE = textwrap.dedent("""
    import json, os, sys, time
    import ray
    from ray.tune.execution.class_cache import _ActorClassCache
    from ray.util.placement_group import placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy
    from scanshift_ray import local_ray

    def processes():  # this Ray's raylet pids, and {pid: (parent pid, command line)}
        procs = {}
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\\0", b" ").decode()
                ppid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            procs[int(pid)] = (ppid, cmd)
        raylets = {p for p, (_, c) in procs.items() if "raylet" in c.split(" ")[0] and os.environ["RAY_TMPDIR"] in c}
        return raylets, procs

    def idle_workers():  # pids of this Ray's idle workers: children of its raylet titled ray::IDLE
        raylets, procs = processes()
        return {p for p, (pp, c) in procs.items() if pp in raylets and c.startswith("ray::IDLE")}

    def raylet_env(key):
        (raylet,) = processes()[0]
        for item in open(f"/proc/{raylet}/environ", "rb").read().split(b"\\0"):
            if item.startswith(key.encode() + b"="):
                return item.split(b"=", 1)[1].decode()

    class Probe:
        def __init__(self):
            self.torch_first = "torch" in sys.modules  # imported before this actor's code ran

        def look(self):
            return {"pid": os.getpid(), "torch_first": self.torch_first,
                    "PL_DISABLE_FORK": os.environ.get("PL_DISABLE_FORK")}

    from ray._private import state
    polls = []
    node_table = state.GlobalState.node_table
    state.GlobalState.node_table = lambda self: polls.append(1) or node_table(self)
    assert local_ray.start_ray(verbose=0, warm_workers=True)
    assert polls  # ray.init waited for its node through the short-step poll
    cpus = int(ray.cluster_resources()["CPU"])  # the raylet prestarts one worker per CPU
    deadline = time.monotonic() + 60
    while len(idle_workers()) < cpus and time.monotonic() < deadline:
        time.sleep(0.1)
    before = idle_workers()
    # as Tune does: placement groups for the trials first (from then on the raylet stops idle workers in
    # excess of the free CPUs), the actors later (here 1.5 s: a driver still busy setting up Tune)
    pgs = [placement_group([{"CPU": 1}]) for _ in range(cpus)]  # one trial per CPU
    ray.get([pg.ready() for pg in pgs])
    time.sleep(1.5)
    with local_ray.tune_actors_inherit_env():
        actor = _ActorClassCache().get(Probe).options(  # the way Tune creates its trial actors
            scheduling_strategy=PlacementGroupSchedulingStrategy(pgs[0])).remote()
        inside = ray.get(actor.look.remote())
    print(json.dumps({"prestarted": inside.pop("pid") in before, **inside,
                      "driver_env": os.environ.get("PL_DISABLE_FORK"),
                      "socket_retry_ms": raylet_env("RAY_raylet_client_connect_timeout_milliseconds"),
                      "idle_ms": raylet_env("RAY_idle_worker_killing_time_threshold_ms")}))
    ray.shutdown()
""")


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds Ray's worker processes in /proc")
def test_a_warm_local_ray_hands_tune_actors_its_prestarted_workers():
    """A real Ray started by `start_ray`: an actor created through Tune's own class cache, in a placement
    group reserved 1.5 s before, runs in one of the workers the raylet prestarted (fails with Ray's 1 s
    idle threshold), finds torch already imported there, and still sees Tune's PL_DISABLE_FORK=1
    (inherited from the raylet; the driver's environment is left as it was); the raylet retries its
    sockets in 20 ms steps."""
    env = {k: v for k, v in os.environ.items() if k not in KEYS and k not in class_cache.ENV_VARS_TO_PROPAGATE}
    with tempfile.TemporaryDirectory(prefix="ssr", dir="/tmp") as tmp:  # Ray's socket paths must stay short
        env.update(RAY_ADDRESS="local", RAY_TMPDIR=tmp)  # always a new Ray of its own
        out = subprocess.run([sys.executable, "-c", WARM_PROBE], env=env, capture_output=True, text=True,
                             timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == (
        '{"prestarted": true, "torch_first": true, "PL_DISABLE_FORK": "1", "driver_env": null, '
        '"socket_retry_ms": "20", "idle_ms": "10000"}')


def test_tunes_env_is_kept_when_it_would_pass_more_than_the_raylet_got(monkeypatch):
    """Credentials set after the warm Ray started (the raylet never got them): Tune's actors keep their
    runtime env, so the variables still reach them."""
    monkeypatch.setattr(local_ray, "_inherited", {"PL_DISABLE_FORK": "1"})
    monkeypatch.setattr(local_ray, "started_here", lambda: True)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key")
    with local_ray.tune_actors_inherit_env():
        assert class_cache.DEFAULT_ENV_VARS == {"PL_DISABLE_FORK": "1"}
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    with local_ray.tune_actors_inherit_env():
        assert class_cache.DEFAULT_ENV_VARS == {}
    assert class_cache.DEFAULT_ENV_VARS == {"PL_DISABLE_FORK": "1"}
