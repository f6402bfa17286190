"""Benchmarks of vccasync against its fake API: ``python -m benchmarks`` (``nox -s bench``)."""
