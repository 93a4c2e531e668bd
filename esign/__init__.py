"""Keys, certificates, development PKI, PAdES signing, timestamps, CRLs, QR tokens."""
