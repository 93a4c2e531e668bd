"""Record validation: normalisation, rejection and the invalid-records file."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from common.codes import normalize_code
from common.errors import InputError
from tests.templates.conftest import DATA, person_sample

INVALID_RECORDS = [
    json.loads(line)
    for line in (DATA / "licenses-invalid.jsonl").read_text("utf-8").splitlines()
    if line.strip()
]


def validate(catalogue, raw: dict) -> dict:
    return catalogue.get(raw["license_type"]).validate(raw, today=dt.date(2026, 1, 1))


@pytest.mark.parametrize(
    "case", INVALID_RECORDS, ids=[case["why"] for case in INVALID_RECORDS]
)
def test_invalid_records_file(catalogue, case):
    raw = case["record"]
    if case["expect"] == "reject":
        with pytest.raises(InputError) as raised:
            validate(catalogue, raw)
        assert raised.value.field is not None
        assert raised.value.fix
    else:
        assert case["expect"] == "accept-normalized"
        record = validate(catalogue, raw)
        assert record["uscc"] == normalize_code(raw["uscc"])
        assert record["uscc"] == "91152502MAWUC9QR9G"


def test_every_sample_validates(catalogue, samples):
    for raw in samples:
        # Some synthetic samples carry issue dates years ahead; validate those
        # on their own issue date, and check the future case separately.
        issued_on = dt.date.fromisoformat(raw["issued_on"])
        today = max(issued_on, dt.date(2026, 1, 1))
        record = catalogue.get(raw["license_type"]).validate(raw, today=today)
        assert record["license_type"] == raw["license_type"]
        assert isinstance(record["issued_on"], dt.date)


def test_person_sample_validates(catalogue):
    record = validate(catalogue, person_sample())
    assert record["id_number"] == "150102198503121232"
    assert record["valid_to"] == dt.date(2027, 2, 28)


def business(samples) -> dict:
    return dict(next(r for r in samples if r["license_type"] == "business_license"))


def test_dates_become_dates(catalogue, samples):
    record = validate(catalogue, business(samples))
    assert record["established_on"] == dt.date(2013, 2, 15)
    assert record["term_to"] is None


def test_open_ended_word_means_no_end(catalogue, samples):
    raw = business(samples) | {"term_to": "长期"}
    assert validate(catalogue, raw)["term_to"] is None


def test_blank_optional_field_is_none(catalogue, samples):
    raw = next(r for r in samples if r["license_type"] == "individual_business_license")
    raw = dict(raw) | {"name": "  "}
    assert validate(catalogue, raw)["name"] is None


def test_blank_required_field_names_field(catalogue, samples):
    raw = business(samples) | {"legal_representative": "\u3000 "}
    with pytest.raises(InputError) as raised:
        validate(catalogue, raw)
    assert raised.value.field == "legal_representative"


def test_text_is_trimmed(catalogue, samples):
    raw = business(samples) | {"legal_representative": " 秦勇 "}
    assert validate(catalogue, raw)["legal_representative"] == "秦勇"


def test_control_character_rejected(catalogue, samples):
    raw = business(samples) | {"domicile": "内蒙古\n自治区"}
    with pytest.raises(InputError) as raised:
        validate(catalogue, raw)
    assert raised.value.field == "domicile"
    assert "U+000A" in str(raised.value)


def test_too_long_value_rejected(catalogue, samples):
    raw = business(samples) | {"name": "名" * 101}
    with pytest.raises(InputError) as raised:
        validate(catalogue, raw)
    assert raised.value.field == "name"
    assert "100" in str(raised.value)


def test_individual_code_on_business_license_rejected(catalogue, samples):
    raw = business(samples) | {"uscc": "92152921MA3BM2PN5C"}
    with pytest.raises(InputError) as raised:
        validate(catalogue, raw)
    assert raised.value.field == "uscc"


def test_food_license_number_pattern(catalogue, samples):
    raw = dict(next(r for r in samples if r["license_type"] == "food_business_license"))
    assert validate(catalogue, raw)["license_no"].startswith("JY")
    with pytest.raises(InputError) as raised:
        validate(catalogue, raw | {"license_no": "JY1234"})
    assert raised.value.field == "license_no"


def test_food_license_number_folds_width(catalogue, samples):
    raw = dict(next(r for r in samples if r["license_type"] == "food_business_license"))
    folded = raw["license_no"]
    wide = "ｊｙ" + folded[2:]
    assert validate(catalogue, raw | {"license_no": wide})["license_no"] == folded


def test_type_mismatch_rejected(catalogue, samples):
    template = catalogue.get("food_business_license")
    with pytest.raises(InputError) as raised:
        template.validate(business(samples))
    assert raised.value.field == "license_type"


def test_citizen_id_error_masks_number(catalogue):
    raw = person_sample() | {"id_number": "150102198503121233"}
    with pytest.raises(InputError) as raised:
        validate(catalogue, raw)
    assert raised.value.field == "id_number"
    assert "198503" not in str(raised.value.value)


def test_end_before_start_rejected(catalogue):
    raw = person_sample() | {"valid_to": "2020-01-01"}
    with pytest.raises(InputError) as raised:
        validate(catalogue, raw)
    assert raised.value.field == "valid_to"


def test_missing_end_date_rejected(catalogue):
    raw = person_sample() | {"valid_to": None}
    with pytest.raises(InputError) as raised:
        validate(catalogue, raw)
    assert raised.value.field == "valid_to"


def test_non_string_rejected(catalogue, samples):
    raw = business(samples) | {"name": 12345}
    with pytest.raises(InputError) as raised:
        validate(catalogue, raw)
    assert raised.value.field == "name"


def test_validate_is_idempotent(catalogue, samples):
    record = validate(catalogue, business(samples))
    assert validate(catalogue, record) == record


def test_future_issue_date_rejected(catalogue, samples):
    raw = dict(samples[0], issued_on="2099-01-01")
    with pytest.raises(InputError) as caught:
        validate(catalogue, raw)
    assert caught.value.field == "issued_on"
    assert "晚于今天" in caught.value.message


def test_issue_before_establishment_rejected(catalogue, samples):
    raw = dict(business(samples))
    raw["issued_on"] = "2010-01-04"
    raw["established_on"] = "2010-01-05"
    with pytest.raises(InputError) as caught:
        validate(catalogue, raw)
    assert caught.value.field == "established_on"
    assert "2010-01-05" in caught.value.message
    assert "发证日期 2010-01-04" in caught.value.message


def test_issue_on_establishment_day_accepted(catalogue, samples):
    raw = dict(business(samples))
    raw["established_on"] = raw["issued_on"]
    raw["term_from"] = raw["issued_on"]
    record = validate(catalogue, raw)
    assert record["established_on"] == record["issued_on"]


def test_unknown_field_rejected(catalogue, samples):
    raw = dict(next(r for r in samples if r["license_type"] == "business_license"))
    raw["term_too"] = raw.pop("term_to") or "2030-01-01"
    with pytest.raises(InputError) as caught:
        validate(catalogue, raw)
    assert caught.value.field == "term_too"


def test_combining_marks_rejected(catalogue, samples):
    raw = dict(next(r for r in samples if r["license_type"] == "business_license"))
    raw["name"] = "测试有限公司" + "\u0301" * 50
    with pytest.raises(InputError) as caught:
        validate(catalogue, raw)
    assert caught.value.field == "name"
    assert "U+0301" in caught.value.message
