"""Which IP rules other resources' ledgers hold, between two lists of the resources: this operator's
own ledger writes keep the list current (it is the only writer of ledgers), in the scope it was listed
in (cluster-wide, or the namespace where it may not list across namespaces)."""

from __future__ import annotations

import time
from collections import Counter

import kopf
from litware import spec

from secureml_operator.engine.ledger import IP_RULE, Ledger, Origin
from secureml_operator.engine.ownership import Owner
from secureml_operator.reconciler import CLUSTER, IpRuleClaims, ResourceMemo, Target, _ip_rules, _Listed

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
