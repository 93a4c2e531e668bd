"""A license past the end of its term verifies as expired, not as valid."""

from __future__ import annotations

import datetime as dt

from license_store.models import LicenseStatus
from verifier.register_lookup import _effective_status

TODAY = dt.date(2026, 12, 4)


def test_past_term_reported_expired():
    status = _effective_status(LicenseStatus.VALID, dt.date(2015, 5, 9), TODAY)
    assert status == LicenseStatus.EXPIRED


def test_open_ended_term_stays_valid():
    status = _effective_status(LicenseStatus.VALID, None, TODAY)
    assert status == LicenseStatus.VALID


def test_term_ending_today_stays_valid():
    status = _effective_status(LicenseStatus.VALID, TODAY, TODAY)
    assert status == LicenseStatus.VALID


def test_revoked_license_keeps_its_status():
    status = _effective_status(LicenseStatus.REVOKED, dt.date(2015, 5, 9), TODAY)
    assert status == LicenseStatus.REVOKED
