"""pytest plugin: one ARM emulator per session, reset and re-seeded for every test that uses it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from armemu.emulator import Emulator
from armemu.seed import seed_litware
from armemu.state import Config


@pytest.fixture(scope="session")
def arm_emulator_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    emulator = Emulator(tmp_path_factory.mktemp("armemu")).start()
    yield emulator
    emulator.stop()


@pytest.fixture
def arm_emulator(arm_emulator_server: Emulator) -> Emulator:
    """The emulator, empty but for the rg-litware resources the examples reference."""
    emulator = arm_emulator_server
    emulator.state.config = Config()
    emulator.state.reset()
    seed_litware(emulator.state)
    return emulator
