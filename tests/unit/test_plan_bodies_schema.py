"""Every body `plan()` makes the operator write, for every example and edge case (plancases), goes
through the emulator's schema check (the installed SDK's model of its type) and resource-provider
rules unchanged: Azure would neither drop a field of it (a drift the operator would correct
forever) nor refuse it."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
from plancases import CASES, Case, probe_world

from armemu import rules, schema
from armemu.state import State
from secureml_operator.desired.fields import FieldRule, Json
from secureml_operator.desired.graph import DesiredGraph, LiveLookup, Node, Verb, Write
from secureml_operator.desired.plan import plan
from secureml_operator.engine.ownership import Owner

OWNER = Owner("team", "mlw", "0d5e1c2a-0000-4000-8000-000000000001")


def _applied(body: Json | None, fields: tuple[FieldRule, ...] | list[FieldRule]) -> Json:
    written = copy.deepcopy(body or {})
    for rule in fields:
        rule.apply(written)
    return written


def _writes(graph: DesiredGraph, world: dict[str, Json]) -> Iterator[tuple[str, str, bool, Json]]:
    """(id, ARM type, is a PATCH, body) of each write the engine would send for the plan, where
    Azure answers as `world` says."""
    lookup: LiveLookup = world.get
    for node in graph:
        fields = [*node.fields, *(node.resolve(lookup) if node.resolve else ())]
        if node.create_body is not None:
            created = _applied(node.create_body, fields)
            if node.tagged:
                created["tags"] = {**created.get("tags", {}), **OWNER.tags()}
            yield str(node.id), node.id.type.lower(), False, created
        if node.write is Write.PATCH and fields:
            yield str(node.id), node.id.type.lower(), True, _applied(None, fields)
        for children in node.children:
            for child in children.children:
                child_id = node.id.child(children.child_type, child.name)
                yield str(child_id), child_id.type.lower(), False, _applied(child.body, child.fields)
        for step in node.action.steps(world.get(node.key) or {}, lookup) if node.action else []:
            if step.verb is Verb.PUT:
                yield str(step.target), step.target.type.lower(), False, step.body


def _siblings(node: Node) -> Iterator[tuple[str, Json]]:
    """Each child set as its parent would list it inline: the rules that span siblings see them all."""
    for children in node.children:
        listed = [{"name": child.name, **_applied(child.body, child.fields)} for child in children.children]
        yield str(node.id), {"properties": {children.inline_path.rsplit(".", 1)[-1]: listed}}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_every_planned_body_passes_the_emulators_schema_and_rules_unchanged(case: Case) -> None:
    spec = case.spec()
    graph = plan(spec, case.observed)
    writes = list(_writes(graph, probe_world(spec, graph)))
    assert {kind for _, kind, _, _ in writes} - set(schema.MODELS) == set(), "a written type has no SDK model"
    for resource_id, kind, patch, body in writes:
        assert schema.conform(kind, body, patch) == body, f"{'PATCH' if patch else 'PUT'} {resource_id}"
        rules.check(State(), resource_id, body)
    for node in graph:
        for parent_id, listed in _siblings(node):
            rules.check(State(), parent_id, listed)


def test_a_body_azure_would_change_is_caught() -> None:
    """The check above is not vacuous: an unknown property is refused by the network provider and
    dropped by Machine Learning."""
    spec = CASES[2].spec()  # example 3: a customer VNet with NSG rules
    graph = plan(spec, CASES[2].observed)
    writes = list(_writes(graph, probe_world(spec, graph)))
    kind, rule = next((kind, body) for _, kind, _, body in writes if kind.endswith("/securityrules"))
    with pytest.raises(schema.ParseError):
        schema.conform(kind, {**rule, "location": "westus"})
    kind, update = next((kind, body) for _, kind, patch, body in writes if patch and kind.endswith("/workspaces"))
    assert schema.conform(kind, {**update, "kind": "Default"}, patch=True) == update
