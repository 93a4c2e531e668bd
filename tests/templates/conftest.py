"""Shared fixtures: sample records of every license type and a face factory."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from esign.seal_artwork import VectorSeal
from templates import FaceContext, load_catalogue
from templates.mongolian import authority_name_mn

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
SAMPLES = ROOT / "examples" / "licenses-sample.jsonl"


def read_samples() -> list[dict]:
    with SAMPLES.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def person_sample() -> dict:
    return json.loads((DATA / "food-safety-manager-sample.json").read_text("utf-8"))


def qr_text_for(seed: str) -> str:
    """Return an upper-case verification URL like the token service makes."""
    token = b"".join(hashlib.sha256(f"{seed}{i}".encode()).digest() for i in range(6))
    body = base64.b32encode(token[:170]).decode().rstrip("=")[:272]
    return f"HTTP://127.0.0.1:8000/V/{body}"


def make_face(record: dict, seal: bool = True, **changes: object) -> FaceContext:
    name = record["authority_name"]
    artwork = None
    if seal:
        artwork = VectorSeal(
            name, authority_name_mn(name), "证照专用章", "1501020012345"
        )
    serial = hashlib.sha256(json.dumps(record, default=str).encode()).hexdigest()[:10]
    values = {
        "elicense_id": "1.2.156.3005.2.11150000MA7XQ0CB8J001."
        f"{record['authority_code']}.{serial.upper()}.001.X",
        "version": 1,
        "qr_text": qr_text_for(serial),
        "authority_name": name,
        "authority_code": record["authority_code"],
        "authority_region": record["authority_region"],
        "issued_on": dt.date.fromisoformat(str(record["issued_on"])),
        "seal": artwork,
    }
    values.update(changes)
    return FaceContext(**values)


@pytest.fixture(scope="session")
def catalogue():
    return load_catalogue()


@pytest.fixture(scope="session")
def samples() -> list[dict]:
    return read_samples()


@pytest.fixture(scope="session")
def sample_by_type(samples) -> dict[str, dict]:
    """One sample per license type, preferring ones with rare characters."""
    chosen: dict[str, dict] = {}
    for record in samples:
        kind = record["license_type"]
        if kind not in chosen or (has_rare(record) and not has_rare(chosen[kind])):
            chosen[kind] = record
    chosen["food_safety_manager_certificate"] = person_sample()
    return chosen


RARE_CHARACTERS = "䶮㛃𠀾"


def has_rare(record: dict) -> bool:
    text = json.dumps(record, ensure_ascii=False)
    return any(char in text for char in RARE_CHARACTERS)


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian package poppler-utils)")
    return path


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    tool = require_tool("pdftotext")
    source = tmp_path / "license.pdf"
    source.write_bytes(pdf)
    result = subprocess.run(
        [tool, "-enc", "UTF-8", str(source), "-"], capture_output=True, check=True
    )
    return result.stdout.decode("utf-8")
