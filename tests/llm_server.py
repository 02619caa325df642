"""``rl-shop serve-llm`` started by a test: the real command line, on 127.0.0.1 and a free port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python -m rl_shop.cli serve-llm`` on a free loopback port, serving ``model_name``; ``extra``
    are more command-line arguments. Waits until GET /models answers (``self.models``)."""

    def __init__(self, tmp: Path, *extra: str, model_name: str = "smol", wait_s: float = 120) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log = tmp / f"server-{self.port}.log"
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
        cmd = [
            sys.executable,
            "-m",
            "rl_shop.cli",
            "serve-llm",
            "--port",
            str(self.port),
            "--model-name",
            model_name,
            "--set",
            "num_threads=1",
            *extra,
        ]
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve-llm exited with {self.proc.returncode}:\n{self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/models", timeout=2) as resp:
                    self.models = json.loads(resp.read())
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise AssertionError(f"serve-llm did not answer within {wait_s} s:\n{self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
