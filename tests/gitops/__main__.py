"""Regenerate gitops/argocd/argocd-cm.yaml from health.lua: `PYTHONPATH=tests .venv/bin/python -m gitops`."""

from __future__ import annotations

from gitops import ARGOCD_CM, render_argocd_cm

if __name__ == "__main__":
    ARGOCD_CM.write_text(render_argocd_cm())
    print(f"wrote {ARGOCD_CM}")
