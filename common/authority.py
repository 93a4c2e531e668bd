"""Issuing authorities (颁发机构) and their administrative level."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from common.codes import validate_uscc
from common.errors import InputError, NotFoundError


class AdminLevel(enum.StrEnum):
    """Level of an authority in the three-level structure of the region."""

    REGION = "region"  # 自治区
    LEAGUE_CITY = "league_city"  # 盟、市
    BANNER_COUNTY = "banner_county"  # 旗、县、区

    @classmethod
    def from_region_code(cls, region_code: str) -> AdminLevel:
        """Derive the level from a GB/T 2260 six-digit division code."""
        if region_code.endswith("0000"):
            return cls.REGION
        if region_code.endswith("00"):
            return cls.LEAGUE_CITY
        return cls.BANNER_COUNTY


@dataclass(frozen=True)
class Authority:
    """An issuing authority: the holder of one or more seals."""

    code: str  # unified social credit code
    name: str
    region_code: str  # GB/T 2260
    department: str = "市场监督管理"

    @property
    def level(self) -> AdminLevel:
        return AdminLevel.from_region_code(self.region_code)

    @property
    def is_inner_mongolia(self) -> bool:
        return self.region_code.startswith("15")


class AuthorityRegistry:
    """The authorities this deployment issues for, keyed by their code."""

    def __init__(self, authorities: list[Authority]) -> None:
        self._by_code = {authority.code: authority for authority in authorities}

    def __iter__(self):
        return iter(self._by_code.values())

    def __len__(self) -> int:
        return len(self._by_code)

    def get(self, code: str) -> Authority:
        try:
            return self._by_code[code]
        except KeyError:
            raise NotFoundError(
                f"颁发机构 {code} 未登记",
                fix="请先在颁发机构登记表中添加该机构并为其制作印章",
            ) from None

    @classmethod
    def load(cls, path: Path | None = None) -> AuthorityRegistry:
        """Read a registry file; the packaged one when ``path`` is None."""
        if path is None:
            text = resources.files("common").joinpath("data/authorities.json").read_text(
                encoding="utf-8"
            )
            source = "common/data/authorities.json"
        else:
            text = path.read_text(encoding="utf-8")
            source = str(path)
        try:
            entries = json.loads(text)["authorities"]
            authorities = [_authority_from_json(entry) for entry in entries]
        except (KeyError, TypeError, json.JSONDecodeError) as error:
            raise InputError(
                f"颁发机构登记表 {source} 格式错误：{error}",
                fix="每个条目需含 code、name、region_code",
            ) from error
        return cls(authorities)


def _authority_from_json(entry: dict) -> Authority:
    code = validate_uscc(entry["code"], field="authorities[].code")
    return Authority(
        code=code,
        name=entry["name"],
        region_code=entry["region_code"],
        department=entry.get("department", "市场监督管理"),
    )
