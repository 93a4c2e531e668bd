"""Codewords of an alphanumeric QR code at error correction level M.

``qrcode`` writes data bit by bit and computes the Reed-Solomon error
correction with recursive polynomial objects, which took about 2 ms per
license code. This module computes the same codewords with integers and
log tables; ``qr.qr_matrix`` hands them to ``qrcode`` to place the modules.
The block structure of each version comes from ``qrcode.base.rs_blocks``.
"""

from __future__ import annotations

import functools

from qrcode import constants
from qrcode.base import rs_blocks

ALPHANUMERIC_CHARSET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
ALPHANUMERIC_MODE = 0b0010
PAD_BYTES = (0xEC, 0x11)

# GF(256) with the QR polynomial x^8 + x^4 + x^3 + x^2 + 1.
EXP = [0] * 512
LOG = [0] * 256
_value = 1
for _power in range(255):
    EXP[_power] = _value
    LOG[_value] = _power
    _value <<= 1
    if _value & 0x100:
        _value ^= 0x11D
for _power in range(255, 512):
    EXP[_power] = EXP[_power - 255]


def codewords(text: str, version: int) -> list[int]:
    """Return the interleaved data and error correction codewords of ``text``.

    ``text`` must contain only alphanumeric-mode characters and fit
    ``version`` at level M.
    """
    blocks = rs_blocks(version, constants.ERROR_CORRECT_M)
    capacity = sum(block.data_count for block in blocks)
    data = _data_bytes(text, version, capacity)
    data_blocks = []
    ec_blocks = []
    offset = 0
    for block in blocks:
        chunk = data[offset : offset + block.data_count]
        offset += block.data_count
        data_blocks.append(chunk)
        ec_blocks.append(_remainder(chunk, block.total_count - block.data_count))
    return _interleave(data_blocks) + _interleave(ec_blocks)


def _data_bytes(text: str, version: int, capacity: int) -> list[int]:
    count_bits = _count_bits(version)
    value = ALPHANUMERIC_MODE
    length = 4
    value = (value << count_bits) | len(text)
    length += count_bits
    for index in range(0, len(text) - 1, 2):
        pair = 45 * ALPHANUMERIC_CHARSET.index(text[index])
        pair += ALPHANUMERIC_CHARSET.index(text[index + 1])
        value = (value << 11) | pair
        length += 11
    if len(text) % 2:
        value = (value << 6) | ALPHANUMERIC_CHARSET.index(text[-1])
        length += 6
    # Terminator of up to four zero bits, then zero bits to a whole byte.
    terminator = min(4, 8 * capacity - length)
    padding = terminator + (-(length + terminator) % 8)
    value <<= padding
    length += padding
    result = list(value.to_bytes(length // 8, "big"))
    for index in range(capacity - len(result)):
        result.append(PAD_BYTES[index % 2])
    return result


def _count_bits(version: int) -> int:
    """Return the width of the character count field of alphanumeric mode."""
    if version < 10:
        return 9
    if version < 27:
        return 11
    return 13


@functools.cache
def _generator(degree: int) -> tuple[int, ...]:
    """Return the Reed-Solomon generator polynomial, highest power first."""
    polynomial = [1]
    for power in range(degree):
        product = polynomial + [0]
        for index, coefficient in enumerate(polynomial):
            if coefficient:
                product[index + 1] ^= EXP[LOG[coefficient] + power]
        polynomial = product
    return tuple(polynomial)


@functools.cache
def _products(degree: int) -> tuple[int, ...]:
    """Return, for every byte value, its products with the generator terms.

    Each entry packs the ``degree`` product bytes into one integer, highest
    term in the most significant byte.
    """
    logs = [LOG[coefficient] for coefficient in _generator(degree)[1:]]
    table = [0]
    for factor in range(1, 256):
        shift = LOG[factor]
        products = bytes(EXP[log + shift] for log in logs)
        table.append(int.from_bytes(products, "big"))
    return tuple(table)


def _remainder(data: list[int], degree: int) -> list[int]:
    """Return the error correction codewords: ``data`` modulo the generator.

    The remainder is one integer of ``degree`` bytes, so each step of the
    polynomial division is a shift and an XOR.
    """
    products = _products(degree)
    top_shift = 8 * (degree - 1)
    mask = (1 << (8 * degree)) - 1
    remainder = 0
    for byte in data:
        factor = byte ^ (remainder >> top_shift)
        remainder = ((remainder << 8) & mask) ^ products[factor]
    return list(remainder.to_bytes(degree, "big"))


def _interleave(blocks: list[list[int]]) -> list[int]:
    longest = max(len(block) for block in blocks)
    return [block[i] for i in range(longest) for block in blocks if i < len(block)]
