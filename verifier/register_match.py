"""Register facts of an uploaded file, looked up before verification starts.

The register stores the SHA-256 of each issued PDF. An uploaded file is the
registered PDF itself, or the registered PDF with incremental updates
appended later (an archive timestamp or more validation data). An update
only appends bytes, so the registered PDF is then a prefix of the file that
ends at a revision end (after ``%%EOF`` and its end-of-line).

The lookups run in the calling process because the verification worker
has no database connection. They need no PDF parsing: the candidate prefix
ends come from a byte scan. Whether a matching prefix is really the
registered license (it contains the verified signature, and only
validation data or timestamps follow it) is decided in the verification
itself, see ``PdfVerifier._register_match``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from verifier.register import RegisterLookup
from verifier.verdict import LicenseFacts

_EOF_MARKER = b"%%EOF"


def revision_ends(data: bytes, max_markers: int) -> list[int]:
    """Return the offsets where a revision of ``data`` may end, ascending.

    Each of the first ``max_markers`` ``%%EOF`` markers gives the offset just
    past it, and past one or two following CR or LF bytes. The end of the
    whole file is not included.
    """
    ends: list[int] = []
    position = data.find(_EOF_MARKER)
    markers = 0
    while position >= 0 and markers < max_markers:
        end = position + len(_EOF_MARKER)
        candidates = [end]
        for offset in (0, 1):
            if data[end + offset : end + offset + 1] not in (b"\r", b"\n"):
                break
            candidates.append(end + offset + 1)
        ends.extend(candidate for candidate in candidates if candidate < len(data))
        markers += 1
        position = data.find(_EOF_MARKER, end)
    return ends


def prefix_sha256s(data: bytes, ends: list[int]) -> dict[int, str]:
    """Return the SHA-256 (hex) of ``data[:end]`` for each of ``ends``.

    One pass over the data, so a file with many markers costs one hash of
    the file plus a digest copy per end.
    """
    digests: dict[int, str] = {}
    running = hashlib.sha256()
    hashed = 0
    for end in sorted(ends):
        running.update(data[hashed:end])
        hashed = end
        digests[end] = running.copy().hexdigest()
    return digests


class PrefetchedLookup:
    """Register facts of one document, looked up before the worker starts.

    Implements :class:`verifier.register.RegisterLookup` for the hashes
    looked up by :func:`prefetch` only. It returns None for anything else.
    """

    def __init__(self, facts_by_sha256: dict[str, LicenseFacts]) -> None:
        self.facts_by_sha256 = facts_by_sha256

    def facts_for_pdf(self, pdf_sha256: str) -> LicenseFacts | None:
        return self.facts_by_sha256.get(pdf_sha256)

    def facts_for_elicense_id(self, elicense_id: str) -> LicenseFacts | None:
        for facts in self.facts_by_sha256.values():
            if facts.elicense_id == elicense_id:
                return facts
        return None


def prefetch(
    register: RegisterLookup | None, data: bytes, max_revisions: int
) -> PrefetchedLookup | None:
    """Look up the whole file, and its revision prefixes when that fails.

    At most ``3 * max_revisions`` prefixes are looked up, and only for a
    file whose whole-file hash is not registered.
    """
    if register is None:
        return None
    whole = hashlib.sha256(data).hexdigest()
    facts = register.facts_for_pdf(whole)
    if facts is not None:
        return PrefetchedLookup({whole: facts})
    found: dict[str, LicenseFacts] = {}
    prefixes = prefix_sha256s(data, revision_ends(data, max_revisions))
    for digest in prefixes.values():
        prefix_facts = register.facts_for_pdf(digest)
        if prefix_facts is not None:
            found[digest] = prefix_facts
    return PrefetchedLookup(found)


@dataclass(frozen=True)
class RegisterMatch:
    """A register version found for a file.

    ``registered_bytes`` is the length of the file's prefix that is the
    version's PDF, the whole file unless updates were appended later.
    """

    facts: LicenseFacts
    registered_bytes: int


def match_whole_file(register: RegisterLookup, data: bytes) -> RegisterMatch | None:
    """Return the version whose stored PDF hash is the hash of all of ``data``."""
    facts = register.facts_for_pdf(hashlib.sha256(data).hexdigest())
    return None if facts is None else RegisterMatch(facts, len(data))


def match_registered_prefix(
    register: RegisterLookup,
    data: bytes,
    *,
    signed_end: int,
    elicense_id: str | None,
    only_validation_data_appended: bool,
    max_revisions: int,
) -> RegisterMatch | None:
    """Find the version that ``data`` starts with, for a file with appended updates.

    ``signed_end`` is the offset where the bytes covered by the verified
    signature end, ``elicense_id`` the identifier in the signed revision's
    document information, and ``only_validation_data_appended`` tells whether
    pyhanko's modification analysis found no change after the signed
    revision beyond validation data (DSS), document timestamps and document
    metadata (/Info, XMP), that is, whether step 5 passed.

    A version matches only if all of these hold:

    - the signed revision names the version's e-license identifier;
    - the SHA-256 of a prefix of the file that ends at a revision end, at or
      after ``signed_end``, equals the version's stored PDF hash. So the
      prefix is byte for byte the registered PDF and contains the verified
      signature, because finding other bytes with that hash is infeasible;
    - only validation data, document timestamps and metadata follow the
      signed revision, so the appended bytes change no page, annotation or
      form field. The verifier reads license facts from the signed
      revision, so changed metadata cannot change them either.

    A forged file would need either different bytes with the registered
    hash or an appended revision that changes content and still passes the
    modification analysis of step 5.
    """
    if elicense_id is None or not only_validation_data_appended:
        return None
    if register.facts_for_elicense_id(elicense_id) is None:
        return None
    ends = [end for end in revision_ends(data, max_revisions) if end >= signed_end]
    for end, digest in prefix_sha256s(data, ends).items():
        facts = register.facts_for_pdf(digest)
        if facts is not None and facts.elicense_id == elicense_id:
            return RegisterMatch(facts, end)
    return None
