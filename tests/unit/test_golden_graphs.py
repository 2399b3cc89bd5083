"""Golden graphs: what `plan()` declares for every example and for the edge cases in CASES, compared
with the checked-in expectation in tests/unit/golden/<case>.json. A safety net for reshaping
desired/: the files describe what the graph means (per ARM id: type, role, lifecycle and ownership
facts, the owned fields and their values, the body a create sends, dependencies, child sets and
their policy, and the writes each action asks for when there is something to do), not how nodes
are built, so a restructuring that keeps behaviour keeps them byte for byte.

In a golden file, `owns` maps each owned field to its value, or for a list owned by membership to
its members, their key and policy. A change to plan() fails here with a diff of the golden file, one
line per changed value named by its node and path. When the change is intended, regenerate the
files, then review and commit their diff with it:

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_golden_graphs.py
"""

from __future__ import annotations

import copy
import difflib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from litware import example_file
from plancases import CASES, Case, probe_world

from secureml_operator.desired.fields import Contains, Exact, FieldRule, Json
from secureml_operator.desired.graph import ChildSet, DesiredGraph, Lifecycle, Node
from secureml_operator.desired.plan import plan

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
HOW_TO_UPDATE = "If the change is intended: UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_golden_graphs.py"
AZURE_MANAGED_CATEGORIES = ("Required", "Recommended", "Dependency", "UserDefined")


def _owned(rules: Iterable[FieldRule]) -> Json:
    """path -> the exact value, the structure it must contain, or for a list owned by membership:
    its members and policy."""
    owned: Json = {}
    for rule in rules:
        assert rule.path not in owned, f"two rules own {rule.path}"
        if isinstance(rule, Exact):
            owned[rule.path] = rule.value
        elif isinstance(rule, Contains):
            owned[rule.path] = {"contains": rule.value}
        else:
            owned[rule.path] = {
                "members": list(rule.members),
                "key": rule.key,
                "authoritative": rule.authoritative,
                "forbidden": list(rule.forbidden),
            }
    return owned


def _created(body: Json | None, rules: Iterable[FieldRule]) -> Json | None:
    """The body a create sends (ownership tags aside): the create body with the owned fields set."""
    if body is None:
        return None
    created = copy.deepcopy(body)
    for rule in rules:
        rule.apply(created)
    return created


def _child_set(children: ChildSet) -> Json:
    ignore = children.ignore
    return {
        "listedAt": children.inline_path,
        "listedAsMap": children.inline_is_map,
        "policy": children.policy.value,
        "leftToAzure": [c for c in AZURE_MANAGED_CATEGORIES if ignore and ignore({"properties": {"category": c}})],
        "children": {
            child.name: {"createdAs": _created(child.body, child.fields), "owns": _owned(child.fields)}
            for child in children.children
        },
    }


def _node(node: Node, graph: DesiredGraph, world: dict[str, Json]) -> Json:
    """The facts of one node that drive the walk (a fact that cannot matter for it is left out: how
    an External resource would be created, how a node without owned fields would write)."""
    facts: Json = {
        "type": node.id.type,
        "role": node.role.value,
        "lifecycle": node.lifecycle.value,
        "owns": _owned(node.fields),
        "dependsOn": sorted(str(graph.nodes[key].id) for key in node.depends_on),
    }
    if node.create_body is not None:
        facts |= {"createdAs": _created(node.create_body, node.fields), "tagged": node.tagged}
    if node.lifecycle is Lifecycle.EXTERNAL:
        facts["mustExist"] = node.must_exist
    if node.fields or node.resolve is not None:
        facts["write"] = node.write
    if node.resolve is not None:
        facts["ownsOnceResolved"] = _owned(node.resolve(world.get))
    if node.children:
        facts["children"] = {children.child_type: _child_set(children) for children in node.children}
    if node.action is not None:
        steps = node.action.steps(world.get(node.key) or {}, world.get)
        facts["action"] = {
            "name": node.action.name,
            "stepsWhenDue": [
                {"verb": step.verb, "target": str(step.target), "body": step.body, "reason": step.reason}
                for step in steps
            ],
        }
    return facts


def describe(case: Case) -> str:
    """The golden text of a case: stable (sorted keys) and independent of how plan() builds nodes."""
    spec = case.spec()
    graph = plan(spec, case.observed)
    world = probe_world(spec, graph)
    document = {
        "case": case.why,
        "example": example_file(case.example).name,
        "nodes": {str(node.id): _node(node, graph, world) for node in graph},
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def _leaves(value: Any, path: str = "") -> Iterator[str]:
    """One line per value, named by its full path, so a diff line says which node and field changed."""
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from _leaves(item, f"{path} :: {key}" if path else key)
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from _leaves(item, f"{path}[{index}]")
    else:
        yield f"{path} = {json.dumps(value)}\n"


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_plan_matches_its_golden_graph(case: Case) -> None:
    path = GOLDEN / f"{case.name}.json"
    actual = describe(case)
    if UPDATE:
        path.write_text(actual)
        return
    if not path.exists():
        pytest.fail(f"no golden file {path.name}. {HOW_TO_UPDATE}", False)
    expected = path.read_text()
    if actual != expected:
        before, after = _leaves(json.loads(expected)), _leaves(json.loads(actual))
        diff = difflib.unified_diff(list(before), list(after), f"golden/{path.name}", "plan()", n=0)
        pytest.fail(f"plan() changed for {case.name} ({case.why}).\n{HOW_TO_UPDATE}\n\n{''.join(diff)}", False)


def test_every_golden_file_belongs_to_a_case() -> None:
    """A renamed or removed case leaves no golden file behind that nothing checks any more."""
    assert sorted(path.stem for path in GOLDEN.glob("*.json")) == sorted(case.name for case in CASES)


def test_every_example_has_its_own_case() -> None:
    """A new example is planned here too, not only through the emulator."""
    examples = {path.stem for path in example_file("01").parent.glob("*.yaml")}
    assert examples <= {case.name for case in CASES}
