"""pytest plugin: one control plane per test session, torn down whatever happens."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from kubeharness.controlplane import ControlPlane


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A real kube-apiserver; logs stream to `<tmp>/controlplane/logs`."""
    control_plane = ControlPlane(Path(tmp_path_factory.mktemp("controlplane")))
    with control_plane:
        yield control_plane


@contextmanager
def fresh_namespace(kube: ControlPlane) -> Iterator[str]:
    """A new namespace, deleted afterwards without waiting for finalizers."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    kube.kubectl("create", "namespace", name)
    yield name
    kube.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def namespace(kube: ControlPlane) -> Iterator[str]:
    """A fresh namespace for one test."""
    with fresh_namespace(kube) as name:
        yield name
