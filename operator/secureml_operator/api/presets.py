"""Curated FQDN sets for approved-outbound workspaces: what users would otherwise copy by hand.

Sources: Azure ML's "configure inbound and outbound network traffic" docs (Python packages).
"""

from __future__ import annotations

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
