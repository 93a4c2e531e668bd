"""Load a million licenses into the register, reusing one signed PDF.

Signing a million documents is not what the query and issuance-rate figures
measure, so the rows are inserted directly with batched INSERTs into the
register's own tables (the schema made by the Alembic migrations), all
pointing at the blob of one real signed license.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from pathlib import Path

import sqlalchemy as sa

from benchmarks.records import holder_code
from common.codes import ElicenseIdentifier
from license_store.db import create_engine_for
from license_store.models import License, LicenseVersion

BATCH_ROWS = 20_000
TYPE_CODE = "11150000MA7XQ0CB8J001"
REGIONS = ("150102", "150203", "150402", "150602", "152502", "152921")
ISSUERS = {
    "150102": "11150102MA5CG2Q56L",
    "150203": "11150203MACCPN6M7P",
    "150402": "11150402MAQAB4HR30",
    "150602": "11150602MAR5H69K0K",
    "152502": "11152502MAQBHJW53X",
    "152921": "11152921MA9U9BMD6Q",
}
BULK_OFFSET = 5_000_000


def bulk_holder_code(index: int) -> str:
    return holder_code(REGIONS[index % len(REGIONS)], BULK_OFFSET + index)


def load_licenses(database_url: str, count: int, pdf_sha256: str, pdf_size: int) -> float:
    """Insert ``count`` licenses with one version each; return seconds taken."""
    engine = create_engine_for(database_url)
    licenses = License.__table__
    versions = LicenseVersion.__table__
    started = time.perf_counter()
    with engine.begin() as connection:
        first_id = connection.execute(sa.select(sa.func.max(licenses.c.id))).scalar() or 0
    for start in range(0, count, BATCH_ROWS):
        stop = min(start + BATCH_ROWS, count)
        license_rows, version_rows = _batch(first_id, start, stop, pdf_sha256, pdf_size)
        with engine.begin() as connection:
            connection.execute(licenses.insert(), license_rows)
            connection.execute(versions.insert(), version_rows)
    if engine.dialect.name == "postgresql":
        # Explicit ids bypass the sequence; move it past them for later inserts.
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "SELECT setval(pg_get_serial_sequence('licenses', 'id'), "
                    "(SELECT max(id) FROM licenses))"
                )
            )
    engine.dispose()
    return time.perf_counter() - started


def _batch(first_id: int, start: int, stop: int, sha256: str, size: int):
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    license_rows = []
    version_rows = []
    for index in range(start, stop):
        license_id = first_id + index + 1
        region = REGIONS[index % len(REGIONS)]
        issuer = ISSUERS[region]
        serial = f"2025{index:07d}"
        code = bulk_holder_code(index)
        license_rows.append(
            {
                "id": license_id,
                "license_type": "business_license",
                "type_code": TYPE_CODE,
                "issuer_code": issuer,
                "holder_code": code,
                "holder_code_type": "001",
                "holder_name": f"基准测试企业{index}有限公司",
                "serial": serial,
                "current_version": 1,
                "status": "01",
                "created_at": now,
            }
        )
        version_rows.append(
            {
                "license_id": license_id,
                "version": 1,
                "elicense_id": str(ElicenseIdentifier(TYPE_CODE, issuer, serial, 1)),
                "record": {"license_type": "business_license", "uscc": code},
                "pdf_sha256": sha256,
                "pdf_size": size,
                "valid_from": dt.date(2025, 1, 1),
                "valid_to": None,
                "issued_on": dt.date(2025, 1, 1),
                "created_at": now,
            }
        )
    return license_rows, version_rows


def wrk_query_script(path: Path, count: int, api_key: str, samples: int = 5000) -> Path:
    """Write a wrk Lua script that queries random stored holder codes."""
    chooser = random.Random(7)
    codes = [bulk_holder_code(chooser.randrange(count)) for _ in range(samples)]
    listed = ",".join(f'"{code}"' for code in codes)
    path.write_text(
        f"""local codes = {{{listed}}}
wrk.headers["Authorization"] = "Bearer {api_key}"
math.randomseed(7)
request = function()
  local code = codes[math.random(#codes)]
  return wrk.format("GET", "/api/v1/licenses?purpose=bench&uscc=" .. code)
end
""",
        encoding="utf-8",
    )
    return path
