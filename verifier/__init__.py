"""Verification of e-licenses: PDF signatures, QR tokens and the trust list.

Nothing here loads a private key: verification needs only certificates, the
trust list and, for register status, read access to the register.
"""
