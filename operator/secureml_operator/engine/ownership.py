"""Ownership recorded in Azure: tags name the custom resource that created or adopted a resource."""

from __future__ import annotations

from dataclasses import dataclass

from secureml_operator.engine.errors import PermanentFailure

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

    def check(self, resource: str, tags: dict[str, str]) -> bool:
        """True when the resource is unowned and will be adopted; refuse one owned by another resource."""
        owner_uid = tags.get(TAG_UID)
        if owner_uid is None:
            return True
        if owner_uid != self.uid:
            raise PermanentFailure(
                "OwnedByAnotherResource",
                f"{resource} belongs to SecureMLWorkspace "
                f"{tags.get(TAG_NAMESPACE, '?')}/{tags.get(TAG_NAME, '?')} (uid {owner_uid})",
            )
        return False

    def created(self, tags: dict[str, str]) -> bool:
        """We delete only what we created: ours by uid, and not merely adopted."""
        return tags.get(TAG_UID) == self.uid and tags.get(TAG_ADOPTED) != "true"
