"""HTTP load from a separate process (wrk) against servers started here."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class LoadResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


@contextmanager
def server(command: list[str], probe_url: str, env: dict[str, str] | None = None):
    """Start a server process, wait until ``probe_url`` responds, stop it after."""
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_until_up(probe_url, process)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_up(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early: {process.stderr.read()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not respond within {seconds} s")


def elicense_server(data_dir: Path, port: int, workers: int, env: dict[str, str]):
    command = [
        sys.executable, "-m", "elicense.cli", "serve", "--data-dir", str(data_dir),
        "--port", str(port), "--workers", str(workers),
    ]
    return server(command, f"http://127.0.0.1:{port}/healthz", env)


def bare_server(port: int, workers: int):
    command = [
        sys.executable, "-m", "uvicorn", "benchmarks.bare_app:app", "--port", str(port),
        "--workers", str(workers), "--log-level", "warning",
    ]
    return server(command, f"http://127.0.0.1:{port}/V/probe")


def run_wrk(
    url: str, seconds: int, connections: int, script: Path | None = None
) -> LoadResult:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (Debian package wrk)")
    command = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if script is not None:
        command[1:1] = ["-s", str(script)]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return LoadResult(
        requests_per_second=float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        p50_ms=_latency(output, "50%"),
        p99_ms=_latency(output, "99%"),
        errors=_errors(output),
    )


def _latency(output: str, label: str) -> float:
    match = re.search(rf"{re.escape(label)}\s+([\d.]+)(us|ms|s)", output)
    value, unit = float(match.group(1)), match.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _errors(output: str) -> int:
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    total = int(non_2xx.group(1)) if non_2xx else 0
    if socket:
        total += sum(int(group) for group in socket.groups())
    return total


def worker_peak_rss_mb(parent_pid: int) -> list[float]:
    """Peak resident memory (VmHWM) of each child process of ``parent_pid``."""
    children = Path(f"/proc/{parent_pid}/task/{parent_pid}/children")
    pids = children.read_text().split() if children.exists() else []
    peaks = []
    for pid in pids:
        status = Path(f"/proc/{pid}/status")
        if not status.exists():
            continue
        match = re.search(r"VmHWM:\s+(\d+) kB", status.read_text())
        if match:
            peaks.append(int(match.group(1)) / 1024)
    return peaks
