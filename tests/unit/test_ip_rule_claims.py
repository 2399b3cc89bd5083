"""Which IP rules other resources' ledgers hold, between two lists of the resources: this operator's
own ledger writes keep the list current (it is the only writer of ledgers), in the scope it was listed
in (cluster-wide, or the namespace where it may not list across namespaces)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import kopf
from litware import spec

from secureml_operator.engine.ledger import IP_RULE, Ledger, Origin
from secureml_operator.engine.ownership import Owner
from secureml_operator.reconciler import (
    CLAIMS_LISTED_FOR_SECONDS,
    CLUSTER,
    Claim,
    IpRuleClaims,
    ResourceMemo,
    Target,
    _ip_rules,
    _Listed,
)

STORAGE = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/lake"
ADDRESS = "203.0.113.7"
US = Owner("team-a", "litware", "uid-us")
NEXT_DOOR = Owner("team-b", "next-door", "uid-next-door")


def _target(owner: Owner) -> Target:
    meta = {"namespace": owner.namespace, "name": owner.name, "uid": owner.uid}
    return Target(kopf.Body({"metadata": meta, "spec": {}}), kopf.Patch(), ResourceMemo())  # type: ignore[arg-type]


def _holding(address: str) -> Ledger:
    ledger = Ledger()
    ledger.confirm(STORAGE, IP_RULE, Origin.CREATED, None, name=address)
    return ledger


async def test_a_ledger_stored_here_counts_at_once_and_a_deleted_resource_stops_counting() -> None:
    claims = IpRuleClaims()
    claims._lists[CLUSTER] = _Listed(time.monotonic(), {})  # listed a moment ago: no API call now
    ours = _holding(ADDRESS)
    workspace = spec("06")

    assert (await claims.others(_target(US), workspace, ours))(STORAGE, ADDRESS) == frozenset()
    claims.note(NEXT_DOOR, _holding(ADDRESS))
    others = await claims.others(_target(US), workspace, ours)
    assert others(STORAGE.upper(), ADDRESS) == {Origin.CREATED}, "the team next door holds it: not ours to remove"
    assert (await claims.others(_target(NEXT_DOOR), workspace, ours))(STORAGE, ADDRESS) == frozenset(), "not itself"
    claims.note(NEXT_DOOR, None)
    assert (await claims.others(_target(US), workspace, ours))(STORAGE, ADDRESS) == frozenset()


async def test_a_namespace_list_is_kept_current_only_with_its_own_namespace() -> None:
    claims = IpRuleClaims()
    claims._lists["team-a"] = _Listed(time.monotonic(), {})
    claims.note(NEXT_DOOR, _holding(ADDRESS))  # team-b: outside what team-a's list covers
    claims.note(Owner("team-a", "sibling", "uid-sibling"), _holding(ADDRESS))
    assert set(claims._lists) == {"team-a"}
    assert (await claims.others(_target(US), spec("06"), _holding(ADDRESS)))(STORAGE, ADDRESS) == {Origin.CREATED}
    assert list(claims._lists["team-a"].claims) == ["uid-sibling"]


async def test_a_claim_counts_while_any_other_resource_holds_it_whoever_asks() -> None:
    claims = IpRuleClaims()
    claims._lists[CLUSTER] = _Listed(time.monotonic(), {US.uid: _ip_rules(_holding(ADDRESS))})
    sibling = Owner("team-a", "sibling", "uid-sibling")
    workspace, ours = spec("06"), _holding(ADDRESS)

    assert (await claims.others(_target(US), workspace, ours))(STORAGE, ADDRESS) == frozenset(), "only its own"
    claims.note(NEXT_DOOR, _holding(ADDRESS))
    claims.note(sibling, _holding(ADDRESS))
    claims.note(NEXT_DOOR, _holding(ADDRESS))  # stored again: still one holder, not two
    assert (await claims.others(_target(US), workspace, ours))(STORAGE, ADDRESS) == {Origin.CREATED}
    claims.note(NEXT_DOOR, None)
    assert (await claims.others(_target(US), workspace, ours))(STORAGE, ADDRESS) == {Origin.CREATED}, "sibling"
    assert (await claims.others(_target(sibling), workspace, ours))(STORAGE, ADDRESS) == {Origin.CREATED}, "us"
    claims.note(sibling, Ledger())
    assert (await claims.others(_target(US), workspace, ours))(STORAGE, ADDRESS) == frozenset()
    assert not claims._lists[CLUSTER].holders - Counter(_ip_rules(ours)), "no count left behind"


class _Lister:
    """Lists as kube.workspace_statuses does, after `seconds`, counting the lists by namespace."""

    def __init__(self, claims: dict[str, list[Claim]], cluster_wide: bool, seconds: float = 0.05) -> None:
        self.claims, self.cluster_wide, self.seconds = claims, cluster_wide, seconds
        self.lists: Counter[str] = Counter()

    async def __call__(
        self, namespace: str, keep: Callable[[dict[str, Any]], list[Claim]]
    ) -> tuple[dict[str, list[Claim]], bool]:
        self.lists[namespace] += 1
        await asyncio.sleep(self.seconds)
        return dict(self.claims), self.cluster_wide


async def test_sweeps_that_find_the_list_stale_at_once_wait_for_one_list() -> None:
    lister = _Lister({NEXT_DOOR.uid: _ip_rules(_holding(ADDRESS))}, cluster_wide=True)
    claims = IpRuleClaims(lister)
    claims._lists[CLUSTER] = _Listed(time.monotonic() - CLAIMS_LISTED_FOR_SECONDS - 1, {})  # stale
    workspace, ours = spec("06"), _holding(ADDRESS)

    found = await asyncio.gather(*(claims.others(_target(US), workspace, ours) for _ in range(20)))

    assert lister.lists == {US.namespace: 1}, "one list for twenty sweeps"
    assert all(others(STORAGE, ADDRESS) == {Origin.CREATED} for others in found), "each sees the new list"


async def test_a_namespace_list_does_not_serve_another_namespace() -> None:
    lister = _Lister({}, cluster_wide=False)  # the operator may not list across namespaces
    claims = IpRuleClaims(lister)
    workspace, ours = spec("06"), _holding(ADDRESS)
    sibling = Owner(US.namespace, "sibling", "uid-sibling")

    await asyncio.gather(*(claims.others(_target(owner), workspace, ours) for owner in (US, NEXT_DOOR, sibling)))

    assert lister.lists == {US.namespace: 1, NEXT_DOOR.namespace: 1}
    assert set(claims._lists) == {US.namespace, NEXT_DOOR.namespace}
