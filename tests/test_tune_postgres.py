"""Two tune.py worker processes share one Optuna study on a local PostgreSQL 15 server.

The test starts its own server (initdb into a temp dir, pg_ctl on a free loopback port, socket
dir inside the temp dir), runs two workers against one study with a global budget of 4 trials,
SIGKILLs one worker in the middle of a trial, and checks that the budget is met exactly: 4
finished trials, the killed one marked FAIL by the heartbeat and re-run by the other worker.

Needs the Debian package `postgresql` (binaries in /usr/lib/postgresql/15/bin).  When they are
missing the test installs the package if it runs as root (apt-get, time-limited), else skips.
When running as root the server runs as the `postgres` system user (PostgreSQL refuses root).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from rl_shop.paths import REPO_ROOT

PG_BIN = Path("/usr/lib/postgresql/15/bin")
FAST = (
    '["total_timesteps=768","eval.freq=256","eval.n_episodes=2","baseline.enabled=false",'
    '"checkpoint.freq=768","algo.kwargs.n_steps=64","hardware.n_envs=2"]'
)


def _ensure_binaries() -> None:
    if (PG_BIN / "initdb").exists():
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip(f"PostgreSQL 15 not installed ({PG_BIN}); run `apt-get install -y postgresql` as root")
    apt_env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        # A fresh machine has empty package lists: refresh them once, then install.
        subprocess.run(["apt-get", "update", "-q"], check=True, timeout=240, capture_output=True, env=apt_env)
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "postgresql"], check=True, timeout=300, capture_output=True, env=apt_env
        )
    except (subprocess.SubprocessError, OSError) as exc:
        pytest.skip(f"could not install postgresql with apt-get: {exc}")
    if not (PG_BIN / "initdb").exists():
        pytest.skip("apt-get finished but PostgreSQL 15 binaries are still missing")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres_url():
    _ensure_binaries()
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        pytest.skip("psycopg2 not installed (pip install psycopg2-binary)")
    root = Path(tempfile.mkdtemp(prefix="rlshop-pg-", dir="/tmp"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` system user to run the server")
        runuser = shutil.which("runuser")
        if runuser is None:
            pytest.skip("running as root without `runuser` to drop privileges for PostgreSQL")
        shutil.chown(root, "postgres", "postgres")
        prefix = [runuser, "-u", "postgres", "--"]
    data, port = root / "data", _free_port()
    subprocess.run(
        [*prefix, str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    opts = f"-p {port} -k {root} -h 127.0.0.1 -c max_connections=50"
    subprocess.run(
        [*prefix, str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "start"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*prefix, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(root, ignore_errors=True)


def _worker(url: str, out: Path, tag: str) -> subprocess.Popen:
    cmd = [
        sys.executable,
        str(REPO_ROOT / "experiments" / "tune.py"),
        "recipe=cartpole_ppo",
        "study_name=pg",
        f"storage={url}",
        "n_trials=10",
        "max_trials=4",
        "seeds_per_trial=1",
        f"train_overrides={FAST}",
        "pruner.name=none",
        "sampler.name=random",
        "heartbeat_interval=1",
        "grace_period=4",
        "max_retry=1",
        f"output_dir={out}",
        f"override_dir={out}/ov",
        "plots=false",
        f"hydra.run.dir={out}/hydra_{tag}",
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=out)


@pytest.mark.slow
def test_two_workers_one_study_exact_budget_and_killed_trial_is_retried(postgres_url, tmp_path):
    import optuna
    from optuna.trial import TrialState

    a = _worker(postgres_url, tmp_path, "a")
    b = _worker(postgres_url, tmp_path, "b")
    try:
        # Kill worker A (SIGKILL: no cleanup) while one of its trials is running.
        deadline, killed = time.time() + 180, False
        while time.time() < deadline and not killed:
            time.sleep(0.3)
            try:
                study = optuna.load_study(study_name="pg", storage=postgres_url)
            except KeyError:
                continue
            for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                # only once its parameters are stored: killed before, the retry samples fresh ones
                if str(t.user_attrs.get("worker", "")).endswith(f":{a.pid}") and t.params:
                    a.send_signal(signal.SIGKILL)
                    killed = True
                    break
        if not killed:
            a.kill()
            pytest.fail(f"worker A never ran a trial:\n{a.communicate()[0][-3000:]}")
        out_b, _ = b.communicate(timeout=300)
        assert b.returncode == 0, out_b
    finally:
        for p in (a, b):
            if p.poll() is None:
                p.kill()
                p.wait()

    study = optuna.load_study(study_name="pg", storage=postgres_url)
    states = [t.state for t in study.trials]
    finished = [t for t in study.trials if t.state == TrialState.COMPLETE]
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    # Exactly the budget finished; the killed trial is FAIL and was re-queued once and re-run.
    assert len(finished) == 4, states
    assert len(failed) == 1, states
    assert len(study.trials) == 5, states
    retried = [t for t in finished if "failed_trial" in t.system_attrs]
    assert len(retried) == 1 and retried[0].system_attrs["failed_trial"] == failed[0].number
    # the retry re-runs what the killed trial had drawn (a kill between two suggestions leaves part
    # of them; the retry draws the rest)
    assert failed[0].params and failed[0].params.items() <= retried[0].params.items()
    assert {str(t.user_attrs["worker"]).rsplit(":", 1)[1] for t in study.trials} >= {str(b.pid)}
