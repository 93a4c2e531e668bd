"""Template files: loading, the catalogue and rejection of malformed files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from common.errors import InputError
from templates import load_catalogue
from templates.catalogue import TYPES_DIR

EXPECTED_TYPES = [
    "business_license",
    "food_business_license",
    "food_safety_manager_certificate",
    "individual_business_license",
]


def test_catalogue_lists_all_types(catalogue):
    assert catalogue.types() == EXPECTED_TYPES


@pytest.mark.parametrize("license_type", EXPECTED_TYPES)
def test_template_identity_fields(catalogue, license_type):
    template = catalogue.get(license_type)
    assert template.license_type == license_type
    assert len(template.catalogue_code) == 21
    assert template.catalogue_code.startswith("11150000MA7XQ0CB8J")
    assert template.signature_level == "B-LT"
    assert template.holder_code_type in ("001", "111")
    assert template.title


def test_catalogue_codes_are_distinct(catalogue):
    codes = [catalogue.get(name).catalogue_code for name in catalogue.types()]
    assert len(set(codes)) == len(codes)


def test_person_certificate_keyed_by_citizen_id(catalogue):
    template = catalogue.get("food_safety_manager_certificate")
    assert template.holder_code_type == "111"
    assert template.holder_code_field == "id_number"


def test_open_ended_business_term(catalogue):
    template = catalogue.get("business_license")
    assert template.valid_to_field == "term_to"
    assert template.field_spec("term_to").open_ended


def test_individual_license_has_no_end(catalogue):
    assert catalogue.get("individual_business_license").valid_to_field is None


def test_unknown_type_lists_known_types(catalogue):
    with pytest.raises(InputError) as raised:
        catalogue.get("fishing_permit")
    assert raised.value.field == "license_type"
    assert "business_license" in str(raised.value)
    assert "food_safety_manager_certificate" in str(raised.value)


def copy_types(tmp_path: Path) -> Path:
    target = tmp_path / "types"
    shutil.copytree(TYPES_DIR, target)
    return target


BROKEN_EDITS = [
    (
        'catalogue_code = "11150000MA7XQ0CB8J001"',
        'catalogue_code = "11150000MA7XQ0CB8J01"',
        "21",
    ),
    ('holder_code_type = "001"', 'holder_code_type = "111"', "holder_code_type"),
    ('holder_code_type = "001"', 'holder_code_type = "999"', "001 或 111"),
    ('signature_level = "B-LT"', 'signature_level = "PAdES"', "signature_level"),
    (
        '["entity_type", "registered_capital"]',
        '["entity_typo", "registered_capital"]',
        "entity_typo",
    ),
    ('type = "money"', 'type = "currency"', "currency"),
    (
        'mongolian_terms = "mongolian-terms.tsv"',
        'mongolian_terms = "missing.tsv"',
        "missing.tsv",
    ),
    ('title = "营业执照"\n', "", "title"),
    ('block = "business_scope"', 'block = "business_scope', "business_license.toml"),
    ('valid_to_field = "term_to"', 'valid_to_field = "domicile"', "date"),
]


@pytest.mark.parametrize(("old", "new", "expected"), BROKEN_EDITS)
def test_malformed_template_rejected(tmp_path, old, new, expected):
    directory = copy_types(tmp_path)
    path = directory / "business_license.toml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(InputError) as raised:
        load_catalogue(directory)
    message = str(raised.value)
    assert "business_license.toml" in message
    assert expected in message


def test_duplicate_type_rejected(tmp_path):
    directory = copy_types(tmp_path)
    shutil.copy(directory / "business_license.toml", directory / "copy.toml")
    with pytest.raises(InputError, match="business_license"):
        load_catalogue(directory)


def test_empty_directory_rejected(tmp_path):
    with pytest.raises(InputError, match="没有证照模板"):
        load_catalogue(tmp_path)
