"""Read the Dockerfile, .dockerignore and requirements.lock the way Docker and pip would, so tests can
check the image recipe and replay its install steps without a Docker engine."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
LOCK = REPO / "requirements.lock"
PYPROJECT = REPO / "pyproject.toml"


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper-cased: FROM, RUN, COPY, ENV, ...
    arguments: str  # the rest of the (joined) line


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [i.arguments for i in self.instructions if i.keyword == keyword]

    def env(self) -> dict[str, str]:
        """ENV key=value pairs in order (later ones win), `$VAR` left as written."""
        values: dict[str, str] = {}
        for arguments in self.all("ENV"):
            for token in shlex.split(arguments):
                key, _, value = token.partition("=")
                values[key] = value
        return values


@dataclass(frozen=True)
class Dockerfile:
    args: dict[str, str]  # global ARGs (before the first FROM) with their defaults
    stages: list[Stage]

    def stage(self, name: str) -> Stage:
        return next(stage for stage in self.stages if stage.name == name)

    @property
    def final(self) -> Stage:
        return self.stages[-1]


def _logical_lines(text: str) -> list[str]:
    """Comment lines dropped and backslash continuations joined, as Docker's parser does."""
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not current):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append((current + stripped).strip())
        current = ""
    if current.strip():
        lines.append(current.strip())
    return lines


def parse_dockerfile(path: Path = DOCKERFILE) -> Dockerfile:
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in _logical_lines(path.read_text()):
        keyword, _, arguments = line.partition(" ")
        keyword, arguments = keyword.upper(), arguments.strip()
        if keyword == "ARG" and not stages:
            name, _, default = arguments.partition("=")
            args[name] = default
        elif keyword == "FROM":
            parts = re.split(r"\s+as\s+", arguments, flags=re.IGNORECASE)
            base = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), parts[0])
            alias = parts[1] if len(parts) > 1 else str(len(stages))
            stages.append(Stage(alias, base))
        elif stages:
            stages[-1].instructions.append(Instruction(keyword, arguments))
    return Dockerfile(args, stages)


def exec_form(arguments: str) -> list[str]:
    """ENTRYPOINT/CMD in JSON (exec) form."""
    value = json.loads(arguments)
    assert isinstance(value, list), f"not exec form: {arguments}"
    return [str(item) for item in value]


def operator_command(python: str) -> list[str]:
    """The image's entrypoint up to the module it runs (`python -OO -m secureml_operator`), with
    `python` as the interpreter: the operator as the container starts it, options to follow."""
    entrypoint = exec_form(parse_dockerfile().stage("runtime").all("ENTRYPOINT")[-1])
    return [python, *entrypoint[1 : entrypoint.index("-m") + 2]]


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match plus `**`) as a regex over slash-separated paths."""
    out = ""
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            out, index = out + "(.*/)?", index + 3
        elif pattern.startswith("**", index):
            out, index = out + ".*", index + 2
        elif pattern[index] == "[" and "]" in pattern[index:]:
            end = pattern.index("]", index)
            out, index = out + pattern[index : end + 1].replace("[!", "[^"), end + 1
        elif pattern[index] == "*":
            out, index = out + "[^/]*", index + 1
        elif pattern[index] == "?":
            out, index = out + "[^/]", index + 1
        else:
            out, index = out + re.escape(pattern[index]), index + 1
    return re.compile(out)


def ignored(relative: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides; `!` re-includes."""
    parts = Path(relative).parts
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    verdict = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = _pattern_regex(pattern.removeprefix("!").strip("/"))
        if any(regex.fullmatch(candidate) for candidate in candidates):
            verdict = not negate
    return verdict


def dockerignore_patterns(path: Path = DOCKERIGNORE) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def runtime_dependencies(path: Path = PYPROJECT) -> list[Requirement]:
    project = tomllib.loads(path.read_text())["project"]
    return [Requirement(spec) for spec in project["dependencies"]]


@dataclass(frozen=True)
class Pin:
    name: str  # canonical
    version: str
    hashes: tuple[str, ...]


def lock_pins(path: Path = LOCK) -> dict[str, Pin]:
    """`name==version` entries of a pip-compile lock, with their --hash options."""
    uncommented = "\n".join(re.sub(r"(^|\s)#.*", "", line) for line in path.read_text().splitlines())
    pins: dict[str, Pin] = {}
    for line in _logical_lines(uncommented):
        requirement, *options = line.split(" --hash=")
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([^\s;]+)", requirement.strip())
        assert match, f"requirements.lock: not an exact pin: {line[:120]}"
        name = canonicalize_name(match.group(1))
        pins[name] = Pin(name, match.group(2), tuple(option.strip() for option in options))
    return pins
