"""A real data directory per test session: development PKI, register, licenses.

The fixtures run the product the way a user does: ``elicense init`` and
``elicense issue`` as subprocesses, then the FastAPI app in process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "examples" / "licenses-sample.jsonl"
PUBLIC_URL = "http://127.0.0.1:8765"


def copy_data_dir(source: Path, target: Path) -> None:
    """Copy a data directory in a child process.

    The session's service context keeps SQLite connections to the source
    open. POSIX locks belong to a process, so reading the database files
    here and closing them would drop SQLite's locks, after which a CLI run
    may delete the WAL index under those connections.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", str(source), str(target)], check=True)


def run_cli(*args: str, data_dir: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``elicense`` in a subprocess with a clean environment."""
    env = {
        key: value for key, value in os.environ.items() if not key.startswith("ELICENSE_")
    }
    env["ELICENSE_PUBLIC_URL"] = PUBLIC_URL
    command = [sys.executable, "-m", "elicense.cli", *args, "--data-dir", str(data_dir)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
    if check and result.returncode != 0:
        raise AssertionError(
            f"elicense {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result


def sample_subset() -> list[dict]:
    """Two records of each license type, including rare characters."""
    records = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    chosen: list[dict] = []
    for license_type in ("business_license", "individual_business_license", "food_business_license"):
        of_type = [r for r in records if r["license_type"] == license_type]
        chosen.extend(of_type[:2])
    rare = [r for r in records if any(ch in json.dumps(r, ensure_ascii=False) for ch in "䶮㛃𠀾")]
    chosen.extend(r for r in rare[:2] if r not in chosen)
    return chosen


@dataclass(frozen=True)
class IssuedSet:
    data_dir: Path
    out_dir: Path
    records: list[dict]
    issue_stdout: str

    @property
    def pdfs(self) -> list[Path]:
        return sorted(self.out_dir.glob("*.pdf"))

    @property
    def root_pem(self) -> Path:
        return self.data_dir / "trust" / "root-ca.pem"


@pytest.fixture(scope="session")
def issued(tmp_path_factory: pytest.TempPathFactory) -> IssuedSet:
    base = tmp_path_factory.mktemp("elicense")
    data_dir = base / "data"
    out_dir = base / "out"
    records = sample_subset()
    input_file = base / "records.jsonl"
    input_file.write_text(
        "\n".join(json.dumps(record, ensure_ascii=False) for record in records) + "\n",
        encoding="utf-8",
    )
    run_cli("init", data_dir=data_dir)
    result = run_cli("issue", str(input_file), "--out", str(out_dir), data_dir=data_dir)
    return IssuedSet(data_dir, out_dir, records, result.stdout)


@pytest.fixture(scope="session")
def live_server(issued: IssuedSet):
    """Run ``elicense serve`` on the port named in the certificates' URLs."""
    env = {
        key: value for key, value in os.environ.items() if not key.startswith("ELICENSE_")
    }
    env["ELICENSE_PUBLIC_URL"] = PUBLIC_URL
    port = PUBLIC_URL.rsplit(":", 1)[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "elicense.cli", "serve", "--data-dir", str(issued.data_dir),
         "--port", port],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_until_up(f"{PUBLIC_URL}/healthz", process)
        yield PUBLIC_URL
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_until_up(url: str, process: subprocess.Popen, seconds: float = 30) -> None:
    import time
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited early:\n{process.stdout.read()}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"server at {url} did not start within {seconds} s")


@pytest.fixture(scope="session")
def service_context(issued: IssuedSet):
    from elicense.context import ServiceContext
    from elicense.settings import Settings

    return ServiceContext(Settings(data_dir=issued.data_dir, public_url=PUBLIC_URL))


@pytest.fixture(scope="session")
def client(service_context):
    from fastapi.testclient import TestClient

    from elicense.web.app import create_app

    with TestClient(create_app(service_context)) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def second_issued(tmp_path_factory: pytest.TempPathFactory) -> IssuedSet:
    """A second deployment with a PKI of its own and two issued licenses."""
    base = tmp_path_factory.mktemp("elicense-second")
    data_dir = base / "data"
    out_dir = base / "out"
    records = sample_subset()[2:4]
    input_file = base / "records.jsonl"
    input_file.write_text(
        "\n".join(json.dumps(record, ensure_ascii=False) for record in records) + "\n",
        encoding="utf-8",
    )
    run_cli("init", data_dir=data_dir)
    result = run_cli("issue", str(input_file), "--out", str(out_dir), data_dir=data_dir)
    return IssuedSet(data_dir, out_dir, records, result.stdout)


def context_for(data_dir: Path):
    """Build a fresh service context, which reads the trust list again."""
    from elicense.context import ServiceContext
    from elicense.settings import Settings

    return ServiceContext(Settings(data_dir=data_dir, public_url=PUBLIC_URL))


@pytest.fixture(scope="module")
def private_server(issued: IssuedSet):
    """Run ``elicense serve`` on a free port of its own.

    Unlike ``live_server`` it cannot meet another test run's server on the
    fixed port; URLs in certificates still name ``PUBLIC_URL``.
    """
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        key: value for key, value in os.environ.items() if not key.startswith("ELICENSE_")
    }
    env["ELICENSE_PUBLIC_URL"] = PUBLIC_URL
    process = subprocess.Popen(
        [sys.executable, "-m", "elicense.cli", "serve", "--data-dir", str(issued.data_dir),
         "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(f"{base}/healthz", process)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)
