"""Register matching of files with revisions appended after issuance."""

from __future__ import annotations

import hashlib

from verifier.register_match import (
    PrefetchedLookup,
    match_registered_prefix,
    match_whole_file,
    prefetch,
    prefix_sha256s,
    revision_ends,
)
from verifier.verdict import LicenseFacts

# A registered file of two revisions, then an appended update.
SIGNED = b"%PDF-1.7\nbody\n%%EOF\nsigned revision\n%%EOF\n"
APPENDED = b"timestamp revision\n%%EOF\n"
FILE = SIGNED + APPENDED
ELICENSE_ID = "15292125MA0000001X0001"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FakeRegister:
    """Register that stores one version and records every PDF hash looked up."""

    def __init__(self, stored: bytes, elicense_id: str = ELICENSE_ID) -> None:
        self.facts = LicenseFacts(elicense_id=elicense_id, version=1)
        self.stored_sha256 = sha256(stored)
        self.pdf_lookups: list[str] = []

    def facts_for_pdf(self, pdf_sha256: str) -> LicenseFacts | None:
        self.pdf_lookups.append(pdf_sha256)
        return self.facts if pdf_sha256 == self.stored_sha256 else None

    def facts_for_elicense_id(self, elicense_id: str) -> LicenseFacts | None:
        return self.facts if elicense_id == self.facts.elicense_id else None


def match(register, data=FILE, **overrides):
    arguments = {
        "signed_end": len(SIGNED),
        "elicense_id": ELICENSE_ID,
        "only_validation_data_appended": True,
        "max_revisions": 32,
    }
    arguments.update(overrides)
    return match_registered_prefix(register, data, **arguments)


def test_revision_ends_follow_eof_and_eol():
    data = b"a%%EOF\r\nb%%EOFc%%EOF\nd"

    ends = revision_ends(data, 32)

    assert ends == [6, 7, 8, 14, 20, 21]


def test_revision_ends_exclude_file_end():
    assert revision_ends(SIGNED, 32) == [19, 20, len(SIGNED) - 1]


def test_revision_ends_capped():
    data = b"%%EOF\n" * 50

    ends = revision_ends(data, 3)

    assert ends == [5, 6, 11, 12, 17, 18]


def test_prefix_hashes_equal_direct_hashes():
    ends = revision_ends(FILE, 32)

    digests = prefix_sha256s(FILE, ends)

    assert digests == {end: sha256(FILE[:end]) for end in ends}


def test_whole_file_match():
    register = FakeRegister(FILE)

    found = match_whole_file(register, FILE)

    assert found is not None
    assert found.registered_bytes == len(FILE)


def test_prefix_match_after_appended_revision():
    register = FakeRegister(SIGNED)

    found = match(register)

    assert found is not None
    assert found.facts.elicense_id == ELICENSE_ID
    assert found.registered_bytes == len(SIGNED)


def test_prefix_match_needs_same_identifier():
    register = FakeRegister(SIGNED)

    assert match(register, elicense_id="15292125MA0000002X0001") is None


def test_prefix_match_needs_identifier():
    register = FakeRegister(SIGNED)

    assert match(register, elicense_id=None) is None


def test_prefix_match_rejects_content_changes():
    register = FakeRegister(SIGNED)

    assert match(register, only_validation_data_appended=False) is None


def test_prefix_shorter_than_signed_revision_rejected():
    # The register stores only the revision before the signed one.
    register = FakeRegister(SIGNED[:19])

    assert match(register) is None


def test_prefix_not_at_revision_end_rejected():
    register = FakeRegister(FILE[: len(SIGNED) + 5])

    assert match(register) is None


def test_changed_signed_bytes_rejected():
    register = FakeRegister(SIGNED)
    changed = SIGNED.replace(b"signed", b"forged") + APPENDED

    assert match(register, data=changed) is None


def test_prefetch_whole_file_single_lookup():
    register = FakeRegister(FILE)

    lookup = prefetch(register, FILE, 32)

    assert lookup is not None
    assert lookup.facts_for_pdf(sha256(FILE)) == register.facts
    assert register.pdf_lookups == [sha256(FILE)]


def test_prefetch_finds_registered_prefix():
    register = FakeRegister(SIGNED)

    lookup = prefetch(register, FILE, 32)

    assert lookup is not None
    assert lookup.facts_for_pdf(sha256(SIGNED)) == register.facts
    assert lookup.facts_for_elicense_id(ELICENSE_ID) == register.facts
    assert lookup.facts_for_pdf(sha256(FILE)) is None


def test_prefetch_lookups_bounded():
    register = FakeRegister(b"not stored")
    data = b"%%EOF\r\n" * 100

    prefetch(register, data, 4)

    # The whole file, then at most three ends per marker.
    assert len(register.pdf_lookups) <= 1 + 3 * 4


def test_prefetched_lookup_unknown_identifier():
    lookup = PrefetchedLookup({})

    assert lookup.facts_for_elicense_id(ELICENSE_ID) is None
