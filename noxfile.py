"""Developer sessions: ``nox -s tests lint typecheck bench``."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.default_venv_backend = "venv"


@nox.session(python=["3.11", "3.12", "3.13"])
def tests(session: nox.Session) -> None:
    """The test suite on the newest aiohttp."""
    session.install("-e", ".[dev]")
    session.run("pytest", *session.posargs)


@nox.session(name="tests-aiohttp313")
def tests_aiohttp313(session: nox.Session) -> None:
    """The test suite on aiohttp 3.13, where aioresponses needs no compatibility shim."""
    session.install("-e", ".[dev]", "aiohttp>=3.13,<3.14")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and format check."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package."""
    session.install("-e", ".[dev]")
    session.run("mypy", "--strict", "vccasync")


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmarks in benchmarks/, side by side against their ideals."""
    session.install("-e", ".[dev]")
    session.run("python", "-m", "benchmarks", *session.posargs)
