"""Command line and web service on top of the e-license packages."""
