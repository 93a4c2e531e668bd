import datetime as dt

import pytest

from common.codes import (
    ElicenseIdentifier,
    mask_citizen_id,
    mod_37_36_check_char,
    parse_elicense_id,
    uscc_check_char,
    validate_citizen_id,
    validate_uscc,
)
from common.errors import InputError


@pytest.mark.parametrize(
    "code", ["91350100M000100Y43", "91110000600037341L", "91110108MA00000070"]
)
def test_uscc_known_valid_codes(code):
    assert validate_uscc(code) == code


def test_uscc_check_zero_when_sum_divisible():
    assert uscc_check_char("91110108MA0000007") == "0"


def test_uscc_letter_authority_accepted():
    body = "N2150100MA0000001"
    code = body + uscc_check_char(body)
    assert validate_uscc(code) == code


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("91350100M000100Y4", "18 位"),
        ("91350100M000100Y44", "校验位"),
        ("91350100MO00100Y43", "'O'"),
        ("C1350100M000100Y43", "登记管理部门"),
    ],
)
def test_uscc_rejections_name_the_problem(value, fragment):
    with pytest.raises(InputError) as caught:
        validate_uscc(value, field="authority_code")
    assert fragment in caught.value.message
    assert caught.value.field == "authority_code"


def test_uscc_full_width_and_case_fold():
    assert validate_uscc(" ９１３５０１００m000100y43 ") == "91350100M000100Y43"


def test_citizen_id_citizen_id_like_uscc_rejected():
    # An 18-digit ID number never starts with a valid authority/category pair
    # for every case, but the check must not accept it as a USCC by accident.
    with pytest.raises(InputError):
        validate_uscc("11010519491231002X")


@pytest.mark.parametrize("number", ["11010519491231002X", "440524188001010014"])
def test_citizen_id_known_valid(number):
    assert validate_citizen_id(number) == number


def test_citizen_id_bad_check():
    with pytest.raises(InputError) as caught:
        validate_citizen_id("110105194912310021")
    assert "校验码" in caught.value.message
    assert caught.value.value == "110105********0021"


def test_citizen_id_impossible_date():
    with pytest.raises(InputError) as caught:
        validate_citizen_id("110105194902301234")
    assert "出生日期" in caught.value.message


def test_citizen_id_future_birth_date():
    with pytest.raises(InputError):
        validate_citizen_id("110105203001010011", today=dt.date(2026, 1, 1))


def test_mask_citizen_id():
    assert mask_citizen_id("150102199003071237") == "150102********1237"


def test_elicense_identifier_known_sample():
    text = "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.U"
    parsed = parse_elicense_id(text)
    assert parsed.check_char_matches
    assert str(parsed.identifier) == text


def test_elicense_identifier_mismatch_is_reported_not_rejected():
    text = "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.A"
    parsed = parse_elicense_id(text)
    assert not parsed.check_char_matches


def test_elicense_identifier_version_changes_check():
    identifier = ElicenseIdentifier(
        "11100000000013338W011", "11430000006122244L", "20230000403", 1
    )
    assert identifier.with_version(2).check_char != identifier.check_char or (
        mod_37_36_check_char(identifier.with_version(2).body)
        == identifier.with_version(2).check_char
    )
    assert str(identifier.with_version(2)).split(".")[-2] == "002"


def test_elicense_identifier_rejects_short_type_code():
    with pytest.raises(InputError):
        ElicenseIdentifier("1110000000001", "11430000006122244L", "20230000403", 1)


def test_uscc_category_must_match_authority():
    body = "94150100MA0000001"
    with pytest.raises(InputError) as caught:
        validate_uscc(body + uscc_check_char(body))
    assert "机构类别" in caught.value.message


def test_uscc_division_must_be_digits():
    body = "9115A100MA0000001"
    with pytest.raises(InputError) as caught:
        validate_uscc(body + uscc_check_char(body))
    assert "行政区划" in caught.value.message
