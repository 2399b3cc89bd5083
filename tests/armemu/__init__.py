"""A stateful Azure Resource Manager emulator for tests and `make demo`: the unmodified Azure SDKs
talk to it over HTTPS (see docs/emulator.md)."""

from armemu.emulator import Emulator

__all__ = ["Emulator"]
