"""Ownership tags: they name, for people reading Azure, the custom resource that created or adopted a
resource. They are marks, not proof: the ledger (engine/ledger.py) decides what is ours; our uid tag
only confirms a create the ledger announced, and another resource's uid makes a resource off limits."""

from __future__ import annotations

from dataclasses import dataclass

TAG_NAMESPACE = "secureml.io-namespace"
TAG_NAME = "secureml.io-name"
TAG_UID = "secureml.io-uid"
TAG_ADOPTED = "secureml.io-adopted"


@dataclass(frozen=True)
class Owner:
    namespace: str
    name: str
    uid: str

    def tags(self, adopted: bool = False) -> dict[str, str]:
        tags = {TAG_NAMESPACE: self.namespace, TAG_NAME: self.name, TAG_UID: self.uid}
        return {**tags, TAG_ADOPTED: "true"} if adopted else tags
