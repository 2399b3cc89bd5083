"""Curated FQDN sets for approved-outbound workspaces: what users would otherwise copy by hand, and
the deterministic outbound-rule name of each FQDN (the API reserves them: a user rule must not fight one).

Sources: Azure ML's "configure inbound and outbound network traffic" docs (Python packages).
"""

from __future__ import annotations

import hashlib
import re

RULE_NAME_MAX = 33
PRESET_PREFIX_MAX = 12

PRESET_FQDNS: dict[str, tuple[str, ...]] = {
    "PythonPackages": (
        "anaconda.com",
        "*.anaconda.com",
        "*.anaconda.org",
        "pypi.org",
        "*.pythonhosted.org",
        "pytorch.org",
        "*.pytorch.org",
        "*.tensorflow.org",
    ),
    "HuggingFace": ("huggingface.co", "*.huggingface.co", "*.hf.co"),
    "DockerHub": ("docker.io", "*.docker.io", "*.docker.com", "production.cloudflare.docker.com"),
    "VSCode": (
        "update.code.visualstudio.com",
        "*.vo.msecnd.net",
        "marketplace.visualstudio.com",
        "vscode.download.prss.microsoft.com",
    ),
}


def rule_name(prefix: str, destination: str) -> str:
    """An outbound-rule name (`^[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}$`) for a preset's FQDN."""
    slug = re.sub(r"[^a-z0-9]+", "-", destination.lower().replace("*.", "any-")).strip("-")
    name = f"{prefix}-{slug}"
    if len(name) <= RULE_NAME_MAX:
        return name
    digest = hashlib.sha256(destination.encode()).hexdigest()[:6]
    return f"{name[: RULE_NAME_MAX - 7]}-{digest}"


def preset_rule_name(preset: str, fqdn: str) -> str:
    """The outbound-rule name of one FQDN of a preset."""
    return rule_name(preset.lower()[:PRESET_PREFIX_MAX], fqdn)


def preset_rule_names() -> list[str]:
    """Every outbound-rule name a preset can yield: a user rule with one of these names would fight it."""
    return [preset_rule_name(preset, fqdn) for preset, fqdns in PRESET_FQDNS.items() for fqdn in fqdns]
