"""Frozen verification results: one per step, and the bottom line."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any


class Outcome(enum.StrEnum):
    """Bottom line of a verification, as ETSI EN 319 102-1 names them."""

    VALID = "valid"
    INVALID = "invalid"
    INDETERMINATE = "indeterminate"

    @property
    def label(self) -> str:
        return {"valid": "有效", "invalid": "无效", "indeterminate": "无法确定"}[self]


class StepStatus(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    INDETERMINATE = "indeterminate"
    WARNING = "warning"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class StepResult:
    """Outcome of one numbered verification step."""

    number: int
    name: str
    title: str
    status: StepStatus
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class LicenseFacts:
    """License facts taken from the register or the signed document."""

    elicense_id: str | None = None
    version: int | None = None
    license_type: str | None = None
    license_title: str | None = None
    holder_name: str | None = None
    holder_code: str | None = None
    authority_name: str | None = None
    authority_code: str | None = None
    valid_from: str | None = None
    valid_to: str | None = None
    register_status: str | None = None
    register_status_label: str | None = None
    current_version: int | None = None
    current_elicense_id: str | None = None
    status_changed_at: str | None = None


@dataclass(frozen=True)
class SignerFacts:
    """The seal certificate that signed the document."""

    subject: str
    organization_code: str | None
    issuer: str
    serial_number: str
    sha256_fingerprint: str
    signing_time: str | None = None
    timestamp_time: str | None = None


@dataclass(frozen=True)
class Verdict:
    """The complete result of verifying one document or token."""

    outcome: Outcome
    steps: tuple[StepResult, ...]
    license: LicenseFacts | None = None
    signer: SignerFacts | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def reasons(self) -> tuple[str, ...]:
        """Plain-language reasons of every step that did not pass."""
        return tuple(
            reason
            for step in self.steps
            if step.status in (StepStatus.FAILED, StepStatus.INDETERMINATE)
            for reason in step.reasons
        )

    def step(self, name: str) -> StepResult | None:
        return next((step for step in self.steps if step.name == name), None)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["outcome_label"] = self.outcome.label
        data["reasons"] = list(self.reasons)
        return data


def bottom_line(steps: list[StepResult]) -> Outcome:
    """Derive the overall outcome: any failure invalidates, any doubt defers."""
    statuses = {step.status for step in steps}
    if StepStatus.FAILED in statuses:
        return Outcome.INVALID
    if StepStatus.INDETERMINATE in statuses:
        return Outcome.INDETERMINATE
    return Outcome.VALID
