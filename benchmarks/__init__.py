"""Side-by-side benchmarks; run with ``make bench`` (``python -m benchmarks.run``)."""
