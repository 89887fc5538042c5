"""The installed package works outside the source tree (the packaging issue's acceptance
check): a wheel built from the sources goes into a fresh virtual environment, and from an
empty working directory `convintel --version`, `convintel analyze`, `convintel check` (with
the ONNX backend, whose graph cache must land under the working directory) and `convintel
serve` work, and nothing is written inside the environment.

What this does not check: dependency resolution. So as not to download torch and the
rest again, the fresh environment sees this environment's site-packages through a `.pth`
file and the wheel is installed with `--no-deps`. What is checked is the wheel itself:
its packages, package data (the shipped bundle, the default YAML files), entry point and
defaults, with no source checkout importable.

    make install-check        # this test alone, with its timings (-s)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import site
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import nlp
from tests.conftest import FIXTURES, ROOT

pytestmark = pytest.mark.slow

# What the Dockerfile copies into its builder: the wheel is built from these alone.
SOURCES = ("pyproject.toml", "README.md", "nlp", "service", "training", "models/convintel-base")


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under `folder` with its size and modification time."""
    return {
        str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in folder.rglob("*")
        if path.is_file() or path.is_symlink()
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(url: str, process: subprocess.Popen, log: Path, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"convintel serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"convintel serve not ready after {timeout_s:g} s:\n{log.read_text()[-3000:]}")


def test_wheel_installs_and_runs_outside_the_source_tree(tmp_path: Path) -> None:
    timings: dict[str, float] = {}
    started = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal started
        timings[name] = round(time.perf_counter() - started, 1)
        started = time.perf_counter()

    # 1. The wheel, from a copy of what the Dockerfile copies (no stale build/ folder, no
    # untracked extras). No build isolation: this environment's setuptools builds it offline.
    source = tmp_path / "src"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    wheels = tmp_path / "wheels"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "--wheel-dir",
            str(wheels),
            str(source),
        ],
        cwd=tmp_path,
        env=dict(os.environ),
    )
    (wheel,) = wheels.glob("convintel-*.whl")
    assert wheel.name.startswith(f"convintel-{nlp.__version__}-")
    lap("build wheel")

    # 2. A fresh environment with the wheel in it; then it borrows this one's dependencies (a
    # .pth written after the install, so pip does not take this environment's convintel, an
    # editable install, for the wheel's). No source tree on PYTHONPATH, no convintel settings.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("CONVINTEL_")}
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path, env=env)
    python = venv / "bin" / "python"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            "--quiet",
            str(wheel),
        ],
        cwd=tmp_path,
        env=env,
    )
    purelib = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp_path, env=env
        ).stdout.strip()
    )
    (purelib / "_borrowed_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    convintel = venv / "bin" / "convintel"
    assert convintel.is_file()
    lap("fresh venv + install")

    # 3. From an empty directory.
    work = tmp_path / "work"
    work.mkdir()
    env.update({"CONVINTEL_TORCH_THREADS": "1", "CONVINTEL_ONNX_THREADS": "1", "HF_HUB_OFFLINE": "1"})
    before = _snapshot(venv)

    where = json.loads(
        _run(
            [
                str(python),
                "-c",
                "import json, nlp, service, nlp.paths as p; print(json.dumps("
                "[nlp.__file__, service.__file__, str(p.source_root()), str(p.shipped_models_dir())]))",
            ],
            cwd=work,
            env=env,
        ).stdout
    )
    assert all(path.startswith(str(purelib)) for path in (where[0], where[1], where[3])), where
    assert where[2] == "None", "an installed convintel must not think it runs from a checkout"

    version = _run([str(convintel), "--version"], cwd=work, env=env)
    assert version.stdout.strip() == f"convintel {nlp.__version__}"
    lap("--version")

    fixture = FIXTURES / "transcripts" / "double_charge.json"
    analyzed = _run([str(convintel), "analyze", str(fixture)], cwd=work, env=env)
    analysis = json.loads(analyzed.stdout)
    assert analysis["conversation_id"] == "demo-1042" and analysis["model"]["name"] == "convintel-base"
    assert len(analysis["messages"]) == 4
    lap("analyze")

    checked = _run([str(convintel), "check"], cwd=work, env={**env, "CONVINTEL_ENCODER_BACKEND": "onnx"})
    assert "configuration ok" in checked.stdout
    graphs = list((work / ".cache" / "encoders").glob("minilm-fp32-*.onnx"))
    assert len(graphs) == 1, checked.stdout
    lap("check (ONNX export)")

    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as handle:
        server = subprocess.Popen(
            [str(convintel), "serve", "--port", str(port)], cwd=work, env=env, stdout=handle, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, server, log)
        lap("serve: ready")
        reply = httpx.post(
            f"{url}/v1/conversations/install-check/messages",
            timeout=60,
            json={"id": "m1", "role": "customer", "text": "I was charged twice, refund me today!"},
        )
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["conversation_id"] == "install-check" and body["message"]["id"] == "m1" and not body["duplicate"]
        lap("serve: one message")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
    # uvicorn re-raises SIGTERM once it has shut down cleanly, so -SIGTERM is a clean exit too.
    assert server.returncode in (0, -signal.SIGTERM), log.read_text()[-3000:]
    assert "Finished server process" in log.read_text()

    # 4. State and caches went under the working directory; nothing into the environment.
    assert (work / "var" / "conversations.sqlite3").is_file()
    after = _snapshot(venv)
    changed = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
    assert not changed, f"written inside the virtual environment: {changed[:20]}"
    written = sorted(str(p.relative_to(work)) for p in work.rglob("*") if p.is_file())
    print(f"\ninstall check timings (s): {timings}\nwritten under the working directory: {written}")
