#!/usr/bin/env python3
"""Build the operator's OCI image from the Dockerfile with buildah: no daemon, no image registry.

No registry can be reached here, so the Dockerfile's base (`PYTHON_IMAGE`, by default the official
python slim image pinned by digest) is replaced by one made from Debian packages with mmdebstrap:
Debian 12, whose python3 is the image's Python 3.11, with venv, pip's wheel and CA certificates. The
base is made once and cached as a tarball in ~/.cache/secureml-operator/image-base/, keyed by what
went into it (delete it to take Debian's later updates), and imported into buildah's store. buildah
builds the Dockerfile with chroot isolation (no OCI runtime, no daemon), keeping layers so that a
rebuild redoes only what changed, in a private store under ~/.cache/secureml-operator/containers/:
overlay storage where the kernel allows it, else vfs, which works anywhere (each layer a full copy:
several times slower and larger).

What is missing is installed with apt-get (as root): buildah, mmdebstrap, and podman with runc, which
run the image (tests/integration/test_image.py). Debian packages come from the machine's own apt
sources; the build's pip trusts the machine's CA bundle, mounted only while the builder stage runs.

Usage: image.py [--json]   (stdlib only; prints the image reference, or with --json what the image
test needs: the reference, its size, and the podman command that uses this store)
Environment: PYTHON_IMAGE (this base instead, where a registry is reachable), SMLW_IMAGE_DIR (cache
root), SMLW_IMAGE_STORAGE_DRIVER (overlay or vfs), SMLW_IMAGE_MIRRORS (mmdebstrap MIRROR arguments,
one a line, instead of the machine's apt sources).
"""

from __future__ import annotations

import argparse
import fcntl
import functools
import hashlib
import json
import os
import re
import resource
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE_ROOT = Path(os.environ.get("SMLW_IMAGE_DIR", Path.home() / ".cache" / "secureml-operator"))
NAME = "localhost/secureml-operator"
BASE_NAME = "localhost/secureml-operator-base"
# Debian 12: its python3 is 3.11, pyproject's minimum and the Python of the Dockerfile's default base.
SUITE = "bookworm"
VARIANT = "minbase"
# What the official slim image has besides Python: CA certificates, /etc/services and time zones;
# `python` (python-is-python3) and venv with pip's wheel for the builder stage.
BASE_PACKAGES = ("python3", "python3-venv", "python-is-python3", "ca-certificates", "netbase", "tzdata")
DPKG_OPTIONS = (  # as Debian's slim images: no documentation but the licences, no translations
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/lintian/*",
)
# The image config the official image has and a bare tarball lacks (the Dockerfile extends PATH).
BASE_CONFIG = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8")
DEBIAN_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
TOOLS = {"buildah": "buildah", "mmdebstrap": "mmdebstrap", "podman": "podman", "runc": "runc"}  # command: package


def log(message: str) -> None:
    print(f"image: {message}", file=sys.stderr, flush=True)


def run(argv: list[str], env: dict[str, str] | None = None, stream: bool = False) -> str:
    """Run a command; `stream` shows its output as it goes (on stderr: stdout is this script's answer)."""
    if stream:
        if subprocess.run(argv, stdout=sys.stderr, env=env).returncode != 0:
            raise SystemExit(f"image: `{' '.join(argv[:6])} ...` failed")
        return ""
    result = subprocess.run(argv, text=True, capture_output=True, env=env)
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-6000:] + result.stderr[-6000:])
        raise SystemExit(f"image: `{' '.join(argv[:6])} ...` failed ({result.returncode})")
    return str(result.stdout)


def ensure_tools() -> None:
    missing = sorted({package for command, package in TOOLS.items() if shutil.which(command) is None})
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SystemExit(
            f"image: missing {', '.join(missing)}: install them (Debian: `sudo apt-get install {' '.join(missing)}`)"
        )
    started = time.monotonic()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-qq"], env=env)
    run(["apt-get", "install", "-y", "-qq", *missing], env=env)
    log(f"installed {' '.join(missing)} in {time.monotonic() - started:.0f}s")


def storage_flags(driver: str | None = None) -> list[str]:
    """buildah's and podman's global flags for the project's own store, one per storage driver."""
    driver = driver or storage_driver()
    root = CACHE_ROOT / "containers" / driver
    run_dir = Path("/run") if os.geteuid() == 0 else Path(tempfile.gettempdir())
    runroot = run_dir / "secureml-operator" / hashlib.sha256(str(root).encode()).hexdigest()[:12]
    return ["--root", str(root), "--runroot", str(runroot), "--storage-driver", driver]


@functools.cache
def storage_driver() -> str:
    """overlay where the kernel mounts it on the cache's filesystem (layers are diffs: a build several
    times faster, a sixth of the disk), else vfs, which works anywhere (each layer a full copy)."""
    chosen = os.environ.get("SMLW_IMAGE_STORAGE_DRIVER")
    if chosen:
        return chosen
    probe = subprocess.run(["buildah", *storage_flags("overlay"), "images", "--quiet"], capture_output=True)
    return "overlay" if probe.returncode == 0 else "vfs"


def podman_command() -> list[str]:
    """podman on this store. runc: crun refuses hybrid cgroup v1/v2 hosts; cgroupfs: no systemd needed."""
    flags = storage_flags()
    tmpdir = str(Path(flags[flags.index("--runroot") + 1]) / "libpod")  # podman's state: apart from other stores'
    return ["podman", *flags, "--tmpdir", tmpdir, "--runtime", "runc", "--cgroup-manager", "cgroupfs"]


def podman_run_flags() -> list[str]:
    """Explicit limits no higher than the caller's: podman's defaults are above what an unprivileged
    sandbox lets even root raise to, and the container then fails to start."""
    nofile = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 65536)
    nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], 4096)
    return ["--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", f"nproc={nproc}:{nproc}"]


def buildah(*args: str, stream: bool = False) -> str:
    return run(["buildah", *storage_flags(), *args], stream=stream)


def image_id(reference: str) -> str:
    """The image's id in the store, or "" when it is not there."""
    probe = ["buildah", *storage_flags(), "inspect", "--type", "image", "--format", "{{.FromImageID}}", reference]
    result = subprocess.run(probe, capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else ""


def _os_release() -> dict[str, str]:
    path = Path("/etc/os-release")
    text = path.read_text() if path.exists() else ""
    return {key: value.strip('"') for key, _, value in (line.partition("=") for line in text.splitlines()) if value}


def _apt_entries() -> list[tuple[str, list[str], str]]:
    """(URI, suites, signed-by) of every `deb` entry in the machine's apt sources, both formats."""
    entries: list[tuple[str, list[str], str]] = []
    folder = Path("/etc/apt/sources.list.d")
    files = [Path("/etc/apt/sources.list"), *sorted(folder.glob("*.list")), *sorted(folder.glob("*.sources"))]
    for path in (p for p in files if p.is_file()):
        text = path.read_text()
        if path.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields: dict[str, str] = {}
                for line in stanza.splitlines():
                    if line.strip() and not line.startswith(("#", " ", "\t")) and ":" in line:
                        key, _, value = line.partition(":")
                        fields[key.strip().lower()] = value.strip()
                if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes") != "no":
                    for uri in fields.get("uris", "").split():
                        entries.append((uri, fields.get("suites", "").split(), fields.get("signed-by", "")))
            continue
        for line in text.splitlines():
            match = re.match(r"\s*deb\s+(\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
            if match:
                signed = re.search(r"signed-by=(\S+?)[\s\]]", match.group(1) or "")
                entries.append((match.group(2), [match.group(3)], signed.group(1) if signed else ""))
    return entries


def mirrors() -> list[str]:
    """mmdebstrap's MIRROR arguments: Debian as the machine reaches it (its release, -updates and
    -security entries, moved to SUITE), or mmdebstrap's own default when this is not Debian."""
    override = os.environ.get("SMLW_IMAGE_MIRRORS", "").strip()
    if override:
        return [line.strip() for line in override.splitlines() if line.strip()]
    release = _os_release()
    codename = release.get("VERSION_CODENAME", "")
    if release.get("ID") != "debian" or not codename:
        return []
    lines: list[str] = []
    for uri, suites, signed_by in _apt_entries():
        wanted = [
            SUITE + suite.removeprefix(codename)
            for suite in suites
            if suite in {codename, f"{codename}-updates", f"{codename}-security"}
        ]
        if wanted:
            options = f"[signed-by={signed_by}] " if signed_by.startswith("/") else ""
            lines.append(f"deb {options}{uri} {' '.join(wanted)} main")
    return lines


def base_image() -> str:
    """The mmdebstrap base in buildah's store, made (and cached as a tarball) when missing."""
    sources = mirrors()
    recipe = {"suite": SUITE, "variant": VARIANT, "packages": BASE_PACKAGES, "dpkg": DPKG_OPTIONS}
    recipe |= {"mirrors": sources, "config": BASE_CONFIG}
    key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
    reference = f"{BASE_NAME}:{SUITE}-{key}"
    if image_id(reference):
        return reference
    tarball = CACHE_ROOT / "image-base" / f"{SUITE}-{key}.tar"
    if not tarball.exists():
        tarball.parent.mkdir(parents=True, exist_ok=True)
        partial = tarball.with_suffix(".partial.tar")
        partial.unlink(missing_ok=True)  # left by an interrupted run
        started = time.monotonic()
        command = ["mmdebstrap", "--quiet", f"--variant={VARIANT}", f"--include={','.join(BASE_PACKAGES)}"]
        command += [f"--dpkgopt={option}" for option in DPKG_OPTIONS]
        run([*command, SUITE, str(partial), *sources])
        partial.replace(tarball)  # atomic: a later run never imports half a base
        log(f"made the {SUITE} base with mmdebstrap in {time.monotonic() - started:.0f}s ({tarball})")
    container = buildah("from", "--pull=never", "scratch").strip()
    try:
        buildah("add", container, str(tarball), "/")  # a local tar archive is extracted, as Dockerfile ADD does
        buildah("config", *(f"--env={variable}" for variable in BASE_CONFIG), container)
        buildah("commit", "--quiet", container, reference)
    finally:
        subprocess.run(["buildah", *storage_flags(), "rm", container], capture_output=True)
    return reference


def build_volumes(scratch: Path) -> list[str]:
    """The machine's CA bundle and any PIP_INDEX_URL for the builder stage's pip, mounted while it runs
    (a network that inspects TLS has its own CA): nothing of it stays in a layer."""
    candidates = [os.environ.get("PIP_CERT"), ssl.get_default_verify_paths().openssl_cafile, DEBIAN_CA_BUNDLE]
    bundle = next((Path(c) for c in candidates if c and Path(c).is_file()), None)
    settings = {"cert": "/etc/ssl/build-ca.pem"} if bundle else {}
    for variable, option in (("PIP_INDEX_URL", "index-url"), ("PIP_EXTRA_INDEX_URL", "extra-index-url")):
        if os.environ.get(variable):
            settings[option] = os.environ[variable]
    if not settings:
        return []
    config = scratch / "pip.conf"
    config.write_text("[global]\n" + "".join(f"{key} = {value}\n" for key, value in settings.items()))
    volumes = ["--volume", f"{config}:/etc/pip.conf:ro"]
    return [*volumes, "--volume", f"{bundle.resolve()}:/etc/ssl/build-ca.pem:ro"] if bundle else volumes


def size_bytes(reference: str) -> int:
    return int(run([*podman_command(), "image", "inspect", "--format", "{{.Size}}", reference]).strip())


def build() -> dict[str, object]:
    ensure_tools()
    lock_path = CACHE_ROOT / "containers" / ".lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock:  # two sessions building at once: the second waits, then reuses
        fcntl.flock(lock, fcntl.LOCK_EX)
        started = time.monotonic()
        base = os.environ.get("PYTHON_IMAGE") or base_image()
        version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
        reference = f"{NAME}:{version}"
        previous = image_id(reference)
        with tempfile.TemporaryDirectory(prefix="image-build-") as tmp:
            command = [
                "bud",
                "--isolation",
                "chroot",
                "--layers",
                "--pull=false",
                "--build-arg",
                f"PYTHON_IMAGE={base}",
            ]
            command += [*build_volumes(Path(tmp)), "--tag", reference, "--file", str(REPO / "Dockerfile"), str(REPO)]
            buildah(*command, stream=True)
        seconds = time.monotonic() - started
        if previous and previous != image_id(reference):  # its layers stay while the new image shares them
            subprocess.run(["buildah", *storage_flags(), "rmi", previous], capture_output=True)
    size = size_bytes(reference)
    log(f"{reference}: {size / 1e6:.0f} MB, from {base}, built in {seconds:.0f}s")
    log(f"run it: {' '.join(podman_command())} run --rm --read-only {' '.join(podman_run_flags())} {reference} --help")
    log(
        f"push it: buildah {' '.join(storage_flags())} push {reference} docker://<registry>/secureml-operator:{version}"
    )
    return {
        "image": reference,
        "base": base,
        "size_bytes": size,
        "build_seconds": round(seconds, 1),
        "storage_driver": storage_driver(),
        "podman": podman_command(),
        "run_flags": podman_run_flags(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the image, its size and how to run it as JSON")
    args = parser.parse_args()
    built = build()
    print(json.dumps(built) if args.json else built["image"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
