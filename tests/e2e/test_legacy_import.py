"""``elicense import-legacy``: mapping, encodings, error report, resuming.

The sample CSV's holders also appear in the JSON Lines sample, so each test
imports into a fresh data directory.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import PUBLIC_URL, REPO, run_cli

EXAMPLES = REPO / "examples"
LEGACY_CSV = EXAMPLES / "business-licenses-legacy.csv"
MAPPING = EXAMPLES / "business-licenses-legacy.mapping.toml"
CHINESE_HEADERS = {
    "uscc": "统一社会信用代码",
    "name": "企业名称",
    "entity_type": "类型",
    "legal_representative": "法定代表人",
    "registered_capital": "注册资本",
    "established_on": "成立日期",
    "term_from": "营业期限自",
    "term_to": "营业期限至",
    "domicile": "住所",
    "business_scope": "经营范围",
    "issued_on": "发证日期",
    "authority_name": "登记机关",
    "authority_code": "登记机关代码",
    "authority_region": "行政区划",
}


def _counts(stdout: str) -> tuple[int, int, int]:
    issued, repeated = (int(n) for n in re.findall(r"(\d+) 张", stdout)[:2])
    rejected = int(re.search(r"拒绝 (\d+) 行", stdout).group(1))
    return issued, repeated, rejected


def _import(data_dir: Path, csv_path: Path, mapping: Path, *extra: str):
    return run_cli(
        "import-legacy",
        str(csv_path),
        "--mapping",
        str(mapping),
        *extra,
        data_dir=data_dir,
    )


def _start_import(data_dir: Path, report: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELICENSE_")}
    env["ELICENSE_PUBLIC_URL"] = PUBLIC_URL
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "elicense.cli",
            "import-legacy",
            str(LEGACY_CSV),
            "--mapping",
            str(MAPPING),
            "--report",
            str(report),
            "--data-dir",
            str(data_dir),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.slow
def test_sample_imports_and_resumes(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    report = tmp_path / "errors.csv"
    run_cli("init", data_dir=data_dir)
    process = _start_import(data_dir, report)
    try:
        process.wait(timeout=7)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    resumed = _import(data_dir, LEGACY_CSV, MAPPING, "--report", str(report))
    again = _import(data_dir, LEGACY_CSV, MAPPING, "--report", str(report))

    issued, repeated, rejected = _counts(resumed.stdout)
    with report.open(encoding="utf-8-sig") as handle:
        lines = list(csv.DictReader(handle))
    # Rows dated after today are rejected where the templates check issue dates.
    assert [int(line["line"]) for line in lines] in ([], _rows_dated_after_today())
    assert {line["column"] for line in lines} <= {"issued_on"}
    assert issued + repeated + rejected == 60
    assert rejected == len(lines)
    assert _counts(again.stdout) == (0, issued + repeated, rejected)
    assert "导入存量证照" in resumed.stderr
    assert "不符 0 处" in run_cli("fsck", "--skip-pdf-verify", data_dir=data_dir).stdout


def _rows_dated_after_today() -> list[int]:
    """Return the file lines of sample rows whose issue date is still to come."""
    today = dt.date.today().isoformat()
    with LEGACY_CSV.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [
        number for number, row in enumerate(rows, start=2) if row["issued_on"] > today
    ]


def _chinese_export(path: Path) -> None:
    """Write five sample rows with Chinese headers, legacy dates and two bad rows."""
    with LEGACY_CSV.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))[:5]
    rows[1]["issued_on"] = "2014年6月17日"
    rows[2]["established_on"] = rows[2]["established_on"].replace("-", "/")
    last = rows[3]["uscc"][-1]
    rows[3]["uscc"] = rows[3]["uscc"][:-1] + ("1" if last == "0" else "0")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CHINESE_HEADERS.values())
    writer.writerows([row[field] for field in CHINESE_HEADERS] for row in rows)
    writer.writerow(["只有两列", "缺少其余各列"])
    path.write_bytes(buffer.getvalue().encode("gb18030"))


def _chinese_mapping(path: Path) -> None:
    columns = "\n".join(
        f'{field} = "{header}"' for field, header in CHINESE_HEADERS.items()
    )
    path.write_text(
        '[record]\nlicense_type = "business_license"\n\n[columns]\n'
        f"{columns}\n\n[dates]\n"
        'fields = ["established_on", "term_from", "term_to", "issued_on"]\n',
        encoding="utf-8",
    )


def test_gb18030_export_with_report(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    source = tmp_path / "旧系统导出.csv"
    mapping = tmp_path / "mapping.toml"
    report = tmp_path / "errors.csv"
    _chinese_export(source)
    _chinese_mapping(mapping)
    run_cli("init", data_dir=data_dir)

    result = _import(data_dir, source, mapping, "--report", str(report))

    assert _counts(result.stdout) == (4, 0, 2)
    with report.open(encoding="utf-8-sig") as handle:
        lines = list(csv.DictReader(handle))
    assert [line["line"] for line in lines] == ["5", "7"]
    assert lines[0]["column"] == "统一社会信用代码"
    assert lines[0]["value"].startswith("9")
    assert "统一社会信用代码" in lines[0]["reason"]
    assert "应有 14 列" in lines[1]["reason"]


def test_mapping_with_unknown_column_rejected(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    mapping = tmp_path / "mapping.toml"
    mapping.write_text('[columns]\nuscc = "信用代码"\n', encoding="utf-8")
    run_cli("init", data_dir=data_dir)

    result = run_cli(
        "import-legacy",
        str(LEGACY_CSV),
        "--mapping",
        str(mapping),
        data_dir=data_dir,
        check=False,
    )

    assert result.returncode == 1
    assert "信用代码" in result.stderr
