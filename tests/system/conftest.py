"""Fixtures shared by the tests that run real `convintel serve` processes."""

from __future__ import annotations

import pytest

from bench.server import ServerProcess


@pytest.fixture
def servers():
    """Server processes a test starts (append them); each is killed when the test ends."""
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.kill()
