"""Code shared by every package: the error base and the national code checks."""
