"""The real server as a subprocess (`python -m service.cli serve`) on a free port of
127.0.0.1, for the soak benchmark and the process tests (SIGTERM, SIGKILL)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ServerProcess:
    process: subprocess.Popen
    url: str
    log: Path

    @classmethod
    def start(cls, log: Path, env: dict[str, str], timeout_s: float = 120.0) -> ServerProcess:
        """Start `convintel serve` with `CONVINTEL_*` settings from `env` (on top of this
        process's environment) and wait until /readyz answers 200."""
        port = free_port()
        full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
        process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
            cwd=ROOT,
            env=full_env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        server = cls(process, f"http://127.0.0.1:{port}", log)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}:\n{server.log_tail()}")
            try:
                if httpx.get(f"{server.url}/readyz", timeout=1).status_code == 200:
                    return server
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        server.kill()
        raise RuntimeError(f"server not ready after {timeout_s:g} s:\n{server.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def rss_bytes(self) -> int:
        """Resident memory of the server process and its children."""
        try:
            parent = psutil.Process(self.process.pid)
            return sum(p.memory_info().rss for p in [parent, *parent.children(recursive=True)])
        except psutil.NoSuchProcess:
            return 0

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
