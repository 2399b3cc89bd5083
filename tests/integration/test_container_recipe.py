"""Replay the Dockerfile's builder stage without a Docker engine: its COPY and RUN steps run in a
scratch tree under tmp_path (container paths mapped into it), then the venv the runtime stage copies
must pass `pip check` and start the operator's CLI. This catches a lock that does not install, a
missing wheel (`--only-binary`), a package that needs an undeclared dependency, or a COPY that
forgets a file the build needs. It installs about 90 packages, so it is slow (the pip cache helps)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from containerrecipe import REPO, Stage, dockerignore_patterns, exec_form, ignored, parse_dockerfile

pytestmark = pytest.mark.integration
# The image forbids caches; here the pip cache only saves downloads (hashes are still checked).
NO_CACHE = re.compile(r"\s--no-cache-dir\b")


class Replay:
    """Container paths (WORKDIR, the venv, COPY destinations) mapped under one scratch root."""

    def __init__(self, root: Path, python: str) -> None:
        self.root = root
        self.workdir = "/"
        self.env: dict[str, str] = {}
        self.shim = root / "_shim"
        self.shim.mkdir(parents=True)
        for name in ("python", "python3"):  # the base image's interpreter, before any venv exists
            (self.shim / name).symlink_to(python)
        self.mapped: set[str] = set()

    def host(self, container_path: str) -> Path:
        absolute = container_path if container_path.startswith("/") else f"{self.workdir.rstrip('/')}/{container_path}"
        return self.root / absolute.lstrip("/")

    def translate(self, text: str) -> str:
        """Rewrite container paths in a command or ENV value to their place under the root."""
        for path in sorted(self.mapped, key=len, reverse=True):
            text = re.sub(rf"(?<![\w./]){re.escape(path)}(?=/|\s|$|\"|'|:)", str(self.host(path)), text)
        return text

    def run_stage(self, stage: Stage) -> None:
        self.mapped |= {word for arguments in stage.all("RUN") for word in re.findall(r"-m venv (/\S+)", arguments)}
        for instruction in stage.instructions:
            handler = getattr(self, f"_{instruction.keyword.lower()}", None)
            if handler is not None:
                handler(instruction.arguments)

    def _workdir(self, arguments: str) -> None:
        self.workdir = arguments.strip()
        self.mapped.add(self.workdir)
        self.host(self.workdir).mkdir(parents=True, exist_ok=True)

    def _env(self, arguments: str) -> None:
        for token in shlex.split(arguments):
            key, _, value = token.partition("=")
            self.env[key] = self.translate(value)

    def _copy(self, arguments: str) -> None:
        assert not arguments.startswith("--from"), "the builder stage copies only from the build context"
        *sources, destination = arguments.split()
        patterns = dockerignore_patterns()
        for source in sources:
            origin = REPO / source
            target = self.host(destination)
            if origin.is_file():
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target / origin.name)
                continue
            for path in origin.rglob("*"):  # a directory's contents, as Docker copies them
                relative = path.relative_to(REPO).as_posix()
                if path.is_file() and not ignored(relative, patterns):
                    copied = target / path.relative_to(origin)
                    copied.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, copied)

    def _run(self, arguments: str) -> None:
        command = NO_CACHE.sub("", self.translate(arguments))
        env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "PYTHONPATH")}
        env.update({key: value for key, value in self.env.items() if key != "PIP_NO_CACHE_DIR"})
        env["PATH"] = f"{self.shim}:{os.environ['PATH']}"
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", command],
            cwd=self.host(self.workdir),
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert result.returncode == 0, f"RUN {arguments}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"


def _base_python(version: str) -> str:
    """An interpreter of the image's Python minor version, or skip."""
    base = Path(getattr(sys, "_base_executable", sys.executable))
    if f"{sys.version_info.major}.{sys.version_info.minor}" != version:
        pytest.skip(f"the image uses Python {version}; this is {sys.version_info.major}.{sys.version_info.minor}")
    return str(base)


def test_builder_stage_replays_into_a_working_venv(tmp_path: Path) -> None:
    dockerfile = parse_dockerfile()
    builder, runtime = dockerfile.stage("builder"), dockerfile.stage("runtime")
    version = re.match(r"python:(\d+\.\d+)", builder.base)
    assert version, builder.base
    replay = Replay(tmp_path / "fs", _base_python(version.group(1)))
    replay.run_stage(builder)

    copied = [line.split() for line in runtime.all("COPY") if line.startswith("--from=builder")]
    assert copied, "the runtime stage copies the venv from the builder"
    venv = replay.host(copied[0][1])  # the venv's path is the same in both stages
    assert copied[0][1] == copied[0][2] and (venv / "bin" / "python").exists()

    elsewhere = tmp_path / "elsewhere"  # not the source tree: the installed package must be used
    elsewhere.mkdir()
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "PYTHONDONTWRITEBYTECODE": "1",
        "HOME": str(tmp_path),
    }
    check = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "check"], capture_output=True, text=True, env=env, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr

    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import secureml_operator; print(secureml_operator.__file__)"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(venv), "the package is installed into the venv, not linked"

    entrypoint = exec_form(runtime.all("ENTRYPOINT")[-1])
    command = [str(venv / "bin" / entrypoint[0]), *entrypoint[1:], "--help"]
    started = subprocess.run(command, cwd=elsewhere, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert started.returncode == 0, started.stdout + started.stderr
    assert started.stdout.startswith("usage: secureml-operator")
    assert "--liveness" in started.stdout
