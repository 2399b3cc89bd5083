"""`make chaos`: crash the operator, fault ARM and restart the kube-apiserver; count what goes wrong.

Everything runs locally: one control plane (real kube-apiserver + etcd), one ARM emulator and the
operator as a subprocess that is SIGKILLed and started again. Scenarios, for examples 2 and 4:

- crash matrix: create, spec change and delete, each with a SIGKILL of the operator at a random moment.
- ARM faults: 5xx, 429, failed operations and dropped connections on a share of all ARM requests
  (20 % for three minutes) while the examples are created, changed and deleted; then faults off.
- kube-apiserver restart: the API server is stopped and started again (etcd kept) and drift is
  injected in Azure right after it is back; the drift must be corrected within one interval + 10 s.

Definitions (docs/chaos.md says the same):

- run: one scenario instance: apply (or change, or delete) an example; SIGKILL the operator at a
  moment drawn uniformly over the expected duration of that phase (measured in a clean warm-up run);
  start the operator again; wait for convergence (Ready with observedGeneration == generation, or for
  a delete the custom resource gone); compare.
- converged: reached that end state within the timeout.
- missing: a resource the clean run has after the phase, or one the operator's status.ledger or
  status.resources names, absent from the emulator.
- duplicates: more Azure resources of a type than the clean run of the same example has after the
  same phase (two private endpoints for one declaration, say).
- leftovers: after a delete, any resource that was not there before the example was applied,
  private DNS zones and their virtual network links included; after a create or change, a resource
  the clean run's status.ledger records and this run's does not (the delete would leave it).
- wrongly deleted: a pre-existing resource (the emulator's seed: storage account, key vault,
  registry, data lake, the hub VNet and firewall in the connectivity subscription; and a team next
  door's workspace, VNet, NSG, route table, private endpoints and private DNS zone made out of band
  before the run) missing, deleted and re-created, or changed in a way the clean run does not change it.
- recovery: time from the operator's restart to convergence (faults: from the action to convergence
  while faults are on; API-server restart: from the injected drift to its correction).

The script prints one table and exits 1 if any run did not converge, any count is non-zero or the
drift bound is missed. Workdir (logs, every run as JSON): .cache/chaos/.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import random
import re
import shutil
import ssl
import statistics
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hack"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from operatorharness import discard_workspaces
from sandbox import NAMESPACE, REPO, Sandbox

from armemu.seed import LOCATION, PROVIDERS, SUBSCRIPTION, SUBSCRIPTIONS, seed_litware

Json = dict[str, Any]
WORKSPACES = "/apis/secureml.io/v1alpha1/namespaces/{namespace}/securemlworkspaces/{name}"
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
KEPT_GUIDS = {*SUBSCRIPTIONS, "00000000-0000-0000-0000-0000000000ff"}  # constants, not per-run identities
VOLATILE = {"etag", "provisioningState"}  # change on every write or while an operation runs
IDENTITY = ("resourceGuid", "workspaceId")  # Azure's identity: new when a resource is deleted and re-created
PHASES = ("create", "change", "delete")
STALLED_SECONDS = 15  # Stalled this long for the current generation: not converged, without waiting for the timeout


# ---------------------------------------------------------------------------------------------------
# The examples, their spec change and their drift
# ---------------------------------------------------------------------------------------------------
@functools.cache
def _manifest(file: str) -> str:
    """Read once: every run applies the example as it was when the CRDs were installed."""
    return (REPO / "examples" / file).read_text()


def _example(file: str) -> Json:
    manifest: Json = yaml.safe_load(_manifest(file))
    return manifest


@dataclass(frozen=True)
class Example:
    key: str
    file: str
    change: Callable[[Json], Json]  # the spec's outbound section -> the changed one
    drift: Callable[[Sandbox, list[str]], tuple[str, Callable[[], bool]]]  # inject; -> (what, corrected?)

    @property
    def name(self) -> str:
        return str(_example(self.file)["metadata"]["name"])

    def outbound(self, changed: bool) -> Json:
        outbound: Json = _example(self.file)["spec"]["outbound"]
        return self.change(outbound) if changed else outbound


def _add_outbound_rule(outbound: Json) -> Json:
    outbound["managedNetwork"]["rules"].append({"name": "pytorch", "fqdn": "download.pytorch.org"})
    return outbound


def _add_nsg_rule(outbound: Json) -> Json:
    outbound["customerNetwork"]["networkSecurity"]["extraRules"] = [
        {
            "name": "allow-partner-https",
            "priority": 300,
            "direction": "Outbound",
            "access": "Allow",
            "protocol": "Tcp",
            "destinationAddressPrefix": "198.51.100.0/24",
            "destinationPortRanges": ["443"],
        }
    ]
    return outbound


def _body(sandbox: Sandbox, resource_id: str) -> Json | None:
    return next((r["body"] for r in sandbox.arm.resources() if r["id"].lower() == resource_id.lower()), None)


def _enable_public_access(sandbox: Sandbox, created: list[str]) -> tuple[str, Callable[[], bool]]:
    workspace = f"{PROVIDERS}/Microsoft.MachineLearningServices/workspaces/mlw-litware-approved"
    sandbox.arm.rest("PATCH", workspace, {"properties": {"publicNetworkAccess": "Enabled"}})

    def corrected() -> bool:
        body = _body(sandbox, workspace) or {}
        return bool((body.get("properties") or {}).get("publicNetworkAccess") == "Disabled")

    return "public network access enabled on the workspace", corrected


def _delete_nsg_rule(sandbox: Sandbox, created: list[str]) -> tuple[str, Callable[[], bool]]:
    """`created`: the masked, lower-cased ids the clean run created."""
    rules = sorted(i for i in created if "/networksecuritygroups/" in i and "/securityrules/" in i)
    if not rules:
        raise SystemExit("example 4 created no NSG rule to delete")
    rule = next(r["id"] for r in sandbox.arm.resources() if r["id"].lower() == rules[0])
    sandbox.arm.rest("DELETE", rule)
    return f"NSG rule {rule.rsplit('/', 1)[-1]} deleted", lambda: _body(sandbox, rule) is not None


EXAMPLES = {
    "2": Example("2", "02-managed-approved-outbound.yaml", _add_outbound_rule, _enable_public_access),
    "4": Example("4", "04-customer-vnet-hub-firewall.yaml", _add_nsg_rule, _delete_nsg_rule),
}


# ---------------------------------------------------------------------------------------------------
# The team next door: resources made out of band before each run, in the operator's subscription
# ---------------------------------------------------------------------------------------------------
NEXT_DOOR_GROUP = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-nextdoor"
NETWORK = f"{PROVIDERS}/Microsoft.Network"
NEXT_DOOR_VNET = f"{NETWORK}/virtualNetworks/vnet-nextdoor"
NEXT_DOOR_NSG = f"{NETWORK}/networkSecurityGroups/nsg-nextdoor"
NEXT_DOOR_WORKSPACE = f"{PROVIDERS}/Microsoft.MachineLearningServices/workspaces/mlw-nextdoor"
NEXT_DOOR_ZONE = f"{NEXT_DOOR_GROUP}/providers/Microsoft.Network/privateDnsZones/privatelink.api.azureml.ms"
CLIENTS_SUBNET = f"{NETWORK}/virtualNetworks/vnet-litware-clients/subnets/private-endpoints"
NEXT_DOOR: list[tuple[str, Json]] = [
    (NEXT_DOOR_GROUP, {"location": LOCATION}),
    (
        NEXT_DOOR_NSG,
        {
            "location": LOCATION,
            "properties": {
                "securityRules": [
                    {
                        "name": "allow-https-in",
                        "properties": {
                            "priority": 200,
                            "direction": "Inbound",
                            "access": "Allow",
                            "protocol": "Tcp",
                            "sourceAddressPrefix": "VirtualNetwork",
                            "sourcePortRange": "*",
                            "destinationAddressPrefix": "*",
                            "destinationPortRange": "443",
                        },
                    }
                ]
            },
        },
    ),
    (
        f"{NETWORK}/routeTables/rt-nextdoor",
        {
            "location": LOCATION,
            "properties": {
                "routes": [
                    {
                        "name": "to-nva",
                        "properties": {
                            "addressPrefix": "0.0.0.0/0",
                            "nextHopType": "VirtualAppliance",
                            "nextHopIpAddress": "10.3.0.4",
                        },
                    }
                ]
            },
        },
    ),
    (
        NEXT_DOOR_VNET,
        {
            "location": LOCATION,
            "properties": {
                "addressSpace": {"addressPrefixes": ["10.3.0.0/16"]},
                "subnets": [
                    {
                        "name": "workloads",
                        "properties": {"addressPrefix": "10.3.1.0/24", "networkSecurityGroup": {"id": NEXT_DOOR_NSG}},
                    }
                ],
            },
        },
    ),
    (
        NEXT_DOOR_WORKSPACE,
        {
            "location": LOCATION,
            "identity": {"type": "SystemAssigned"},
            "tags": {"team": "next-door"},
            "properties": {
                "storageAccount": f"{PROVIDERS}/Microsoft.Storage/storageAccounts/stlitware",
                "keyVault": f"{PROVIDERS}/Microsoft.KeyVault/vaults/kv-litware",
                "publicNetworkAccess": "Disabled",
            },
        },
    ),
    (NEXT_DOOR_ZONE, {"location": "global"}),
    (
        f"{NEXT_DOOR_ZONE}/virtualNetworkLinks/vnet-nextdoor-link",
        {"location": "global", "properties": {"virtualNetwork": {"id": NEXT_DOOR_VNET}, "registrationEnabled": False}},
    ),
    *(
        (
            f"{NETWORK}/privateEndpoints/{name}",
            {
                "location": LOCATION,
                "properties": {
                    "subnet": {"id": subnet},
                    "privateLinkServiceConnections": [
                        {
                            "name": name,
                            "properties": {"privateLinkServiceId": NEXT_DOOR_WORKSPACE, "groupIds": ["amlworkspace"]},
                        }
                    ],
                },
            },
        )
        for name, subnet in (
            ("pe-mlw-nextdoor", f"{NEXT_DOOR_VNET}/subnets/workloads"),
            ("pe-mlw-nextdoor-clients", CLIENTS_SUBNET),  # in the subnet example 2 puts its endpoint in
        )
    ),
    (
        f"{NETWORK}/privateEndpoints/pe-mlw-nextdoor/privateDnsZoneGroups/default",
        {
            "properties": {
                "privateDnsZoneConfigs": [{"name": "api", "properties": {"privateDnsZoneId": NEXT_DOOR_ZONE}}]
            }
        },
    ),
]


# ---------------------------------------------------------------------------------------------------
# Reading state: the emulator's resources, the custom resource through the API server
# ---------------------------------------------------------------------------------------------------
def _mask(text: str) -> str:
    return GUID.sub(lambda m: m.group(0) if m.group(0).lower() in KEPT_GUIDS else "<guid>", text)


def canonical(value: Any) -> Any:
    """A body as compared between runs: no etags or provisioning states, per-run GUIDs masked, lists
    in a fixed order (their order follows the order of concurrent writes)."""
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in sorted(value.items()) if k not in VOLATILE and not k.startswith("_")}
    if isinstance(value, list):
        return sorted((canonical(item) for item in value), key=lambda item: json.dumps(item, sort_keys=True))
    if isinstance(value, str):
        return _mask(value)
    return value


def kind(resource_id: str) -> str:
    """`Microsoft.Network/privateDnsZones/virtualNetworkLinks` from an id (`resourceGroups` for one)."""
    if "/providers/" not in resource_id:
        return "resourceGroups"
    namespace, *rest = resource_id.rsplit("/providers/", 1)[1].split("/")
    return "/".join([namespace, *rest[0::2]])


def identity(body: Json) -> Any:
    properties = body.get("properties") or {}
    return next((properties[key] for key in IDENTITY if properties.get(key)), None)


class View:
    """The emulator's resources, by masked lower-cased id."""

    def __init__(self, snapshot: list[Json]) -> None:
        self.ids = {_mask(r["id"]).lower(): r["id"] for r in snapshot}
        self.bodies: dict[str, Json] = {_mask(r["id"]).lower(): r["body"] for r in snapshot}

    def __contains__(self, key: str) -> bool:
        return key in self.bodies


class Kube:
    """Reads the custom resource straight from the API server (cheaper to poll than kubectl)."""

    def __init__(self, kubeconfig: Path) -> None:
        config = yaml.safe_load(kubeconfig.read_text())
        cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
        self.server = cluster["server"]
        self.context = ssl.create_default_context(cafile=cluster["certificate-authority"])
        self.context.load_cert_chain(user["client-certificate"], user["client-key"])

    def workspace(self, name: str) -> Json | None:
        """The custom resource, None when it does not exist; raises OSError while the server is down."""
        url = self.server + WORKSPACES.format(namespace=NAMESPACE, name=name)
        try:
            with urllib.request.urlopen(url, context=self.context, timeout=10) as response:
                body: Json = json.loads(response.read())
                return body
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise


def converged(body: Json | None) -> bool:
    status = (body or {}).get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    return body is not None and ready and status.get("observedGeneration") == body["metadata"].get("generation")


def stalled(body: Json | None) -> bool:
    """Stalled for the current generation: the operator will not retry until the spec changes."""
    status = (body or {}).get("status") or {}
    conditions = status.get("conditions") or []
    gave_up = any(c.get("type") == "Stalled" and c.get("status") == "True" for c in conditions)
    return body is not None and gave_up and status.get("observedGeneration") == body["metadata"].get("generation")


def named_in_status(body: Json | None) -> dict[str, str]:
    """What the operator says exists: ledger entries and status.resources (masked id -> what names it);
    an IP rule entry as `<target>#<address>`."""
    status = (body or {}).get("status") or {}
    named: dict[str, str] = {}
    for entry in status.get("ledger") or []:
        key = _mask(str(entry["id"])).lower()
        named[f"{key}#{entry['name']}" if entry.get("type") == "ipRule" else key] = "ledger"
    for item in status.get("resources") or []:
        named.setdefault(_mask(str(item["id"])).lower(), "status.resources")
    return named


# ---------------------------------------------------------------------------------------------------
# Comparing a run's end state with the clean reference
# ---------------------------------------------------------------------------------------------------
@dataclass
class Findings:
    missing: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    wrongly_deleted: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.missing or self.duplicates or self.leftovers or self.wrongly_deleted)


def _ip_rule_present(view: View, key: str) -> bool:
    target, address = key.split("#", 1)
    return target in view and address in json.dumps(view.bodies[target])


def wrongly_deleted(view: View, baseline: View, expected: View) -> list[str]:
    """Pre-existing resources missing, re-created (a new identity) or changed unlike `expected`."""
    found = []
    for key in sorted(baseline.bodies):
        if key not in view:
            found.append(f"deleted {baseline.ids[key]}")
        elif identity(view.bodies[key]) != identity(baseline.bodies[key]):
            found.append(f"re-created {baseline.ids[key]}")
        elif key in expected and canonical(view.bodies[key]) != canonical(expected.bodies[key]):
            found.append(f"changed {baseline.ids[key]}")
    return found


def compare_present(
    view: View, baseline: View, reference: View, reference_baseline: View, reference_ledger: set[str], body: Json | None
) -> Findings:
    """After a create or a change: against the clean run's state and ledger after the same phase. A
    resource the clean run's ledger records and this run's does not is a leftover already: the
    delete, which removes only what the ledger names, will leave it."""
    expected = set(reference.bodies) - set(reference_baseline.bodies)
    named = named_in_status(body)
    ledger = {key for key, source in named.items() if source == "ledger"}
    unrecorded = sorted(key for key in reference_ledger - ledger if "#" in key or key in view)
    leftovers = [f"{view.ids.get(key, key)} (not in status.ledger: a delete would leave it)" for key in unrecorded]
    missing = [reference.ids[key] for key in sorted(expected - set(view.bodies))]
    for key, source in sorted(named.items()):
        absent = not _ip_rule_present(view, key) if "#" in key else key not in view
        if absent and key not in expected:
            missing.append(f"{key} (named in {source})")
    created = Counter(kind(view.ids[key]) for key in set(view.bodies) - set(baseline.bodies))
    clean = Counter(kind(reference.ids[key]) for key in expected)
    duplicates = [
        f"{type_} +{count - clean[type_]}" for type_, count in sorted(created.items()) if count > clean[type_]
    ]
    return Findings(missing, duplicates, leftovers, wrongly_deleted(view, baseline, reference))


def compare_deleted(view: View, baseline: View) -> Findings:
    """After a delete: against the state before the example was applied."""
    leftovers = [view.ids[key] for key in sorted(set(view.bodies) - set(baseline.bodies))]
    return Findings([], [], leftovers, wrongly_deleted(view, baseline, baseline))


# ---------------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------------
@dataclass
class Run:
    scenario: str
    example: str
    phase: str
    converged: bool
    recovery: float | None  # seconds
    kill_after: float | None = None
    findings: Findings = field(default_factory=Findings)
    note: str = ""
    startup: float | None = None  # seconds from the restart to the operator's liveness endpoint answering


@dataclass
class Reference:
    """The clean warm-up run of one example: durations and the state after each phase."""

    baseline: View
    states: dict[str, View]
    seconds: dict[str, float]
    ledgers: dict[str, set[str]]  # masked keys of status.ledger after create and change


class Chaos:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.sandbox = Sandbox(workdir)
        self.random = random.Random(args.seed)
        self.kube: Kube | None = None
        self.runs: list[Run] = []
        self.references: dict[str, Reference] = {}
        self.drift_latencies: list[float] = []
        self.operator_exits = 0
        self.up_at: float | None = None  # when the restarted operator answered its liveness endpoint
        self.log = (workdir / "runs.jsonl").open("a")
        self.settings = {
            "SMLW_POLLING_INTERVAL_SECONDS": "0.2",
            "SMLW_RETRY_DELAY_SECONDS": "1",
            "SMLW_DRIFT_INTERVAL": f"{args.interval}s",
        }

    # the world --------------------------------------------------------------------------------------
    def start(self) -> None:
        self.sandbox.start(**self.settings)
        self.kube = Kube(self.sandbox.kube.kubeconfig)
        self.sandbox.wait_operator_up()

    def stop(self) -> None:
        self.sandbox.stop()
        self.log.close()

    def cr(self, name: str) -> Json | None:
        assert self.kube is not None
        return self.kube.workspace(name)

    def snapshot(self) -> View:
        return View(self.sandbox.arm.resources())

    def restart_operator(self, kill: bool = True) -> float:
        """SIGKILL the operator (if running) and start it again; returns the restart's monotonic time."""
        operator = self.sandbox.operator
        if kill and operator is not None and operator.poll() is None:
            operator.kill()
            operator.wait()
        self.sandbox.start_operator(**self.settings)
        return time.monotonic()

    def fresh_world(self) -> View:
        """No custom resource, Azure as seeded plus the team next door's resources; the operator idle."""
        listed = self.sandbox.kubectl("get", "smlw", "-n", NAMESPACE, "-o", "name").split()
        if listed:  # left by a run with findings: the operator must not act on it any more
            if self.sandbox.operator is not None and self.sandbox.operator.poll() is None:
                self.sandbox.operator.kill()
                self.sandbox.operator.wait()
            discard_workspaces(self.sandbox.kube, NAMESPACE)
            names = [name.rsplit("/", 1)[-1] for name in listed]
            self.sandbox.wait("no SecureMLWorkspace", lambda: all(self.cr(name) is None for name in names))
        self.sandbox.arm.reset()
        # Operations take a while (a crash can land while one runs); polled every 0.2 s, not every 1 s.
        self.sandbox.arm.configure(lro_seconds=self.args.lro_seconds, retry_after=0)
        seed_litware(self.sandbox.arm.state)
        for resource_id, body in NEXT_DOOR:
            self.sandbox.arm.rest("PUT", resource_id, body)
        self.sandbox.arm.clear_requests()
        if self.sandbox.operator is None or self.sandbox.operator.poll() is not None:
            self.restart_operator(kill=False)
        self.sandbox.wait_operator_up()
        return self.snapshot()

    # actions --------------------------------------------------------------------------------------
    def act(self, example: Example, phase: str) -> None:
        drift = {"mode": "Enforce", "interval": f"{self.args.interval}s"}
        if phase == "delete":
            self.sandbox.kubectl("delete", "smlw", example.name, "-n", NAMESPACE, "--wait=false")
        else:
            self.sandbox.apply_example(example.file, drift=drift, outbound=example.outbound(phase == "change"))

    def done(self, example: Example, phase: str) -> bool | None:
        """Converged: True; Stalled (the operator gave up on this generation): None; else False."""
        self.check_operator()
        try:
            body = self.cr(example.name)
        except OSError:
            return False
        if phase == "delete":
            return body is None
        return True if converged(body) else None if stalled(body) else False

    def check_operator(self) -> None:
        """An operator that exits by itself is a finding (and is started again)."""
        operator = self.sandbox.operator
        if operator is not None and operator.poll() is not None:
            self.operator_exits += 1
            print(f"  ! the operator exited by itself ({operator.returncode}); started again", flush=True)
            self.restart_operator(kill=False)

    def wait_done(self, example: Example, phase: str, timeout: float) -> float | None:
        """Monotonic time of convergence, or None after `timeout`; notes when the operator came up."""
        deadline = time.monotonic() + timeout
        self.up_at = None
        stalled_since = None
        while time.monotonic() < deadline:
            if self.up_at is None and self.sandbox.operator_up():
                self.up_at = time.monotonic()
            done = self.done(example, phase)
            if done:
                return time.monotonic()
            stalled_since = None if done is False else stalled_since or time.monotonic()
            if stalled_since is not None and time.monotonic() - stalled_since > STALLED_SECONDS:
                return None  # Stalled is final until the spec changes: no use waiting for the timeout
            time.sleep(0.25)
        return None

    def why_not(self, example: Example) -> str:
        """What the custom resource says while it has not converged (for the findings)."""
        try:
            body = self.cr(example.name)
        except OSError as error:
            return f"the API server did not answer: {error}"
        if body is None:
            return "the custom resource is gone"
        status = body.get("status") or {}
        conditions = {c.get("type"): c for c in status.get("conditions") or []}
        shown = conditions.get("Stalled") if conditions.get("Stalled", {}).get("status") == "True" else None
        shown = shown or conditions.get("Ready") or {}
        generations = f"generation {body['metadata'].get('generation')}, observed {status.get('observedGeneration')}"
        deleting = ", being deleted" if body["metadata"].get("deletionTimestamp") else ""
        return f"{shown.get('type')} {shown.get('reason')}: {str(shown.get('message'))[:300]} ({generations}{deleting})"

    def setup(self, example: Example, upto: str) -> View:
        """A fresh world with the example taken cleanly to the start of phase `upto`; returns the baseline."""
        baseline = self.fresh_world()
        for phase in PHASES[: PHASES.index(upto)]:
            self.act(example, phase)
            if self.wait_done(example, phase, self.args.timeout) is None:
                raise SystemExit(f"example {example.key}: the clean {phase} did not converge: {self.why_not(example)}")
        return baseline

    def compare(self, example: Example, phase: str, baseline: View) -> Findings:
        view = self.snapshot()
        if phase == "delete":
            return compare_deleted(view, baseline)
        ref = self.references[example.key]
        body = self.cr(example.name)
        return compare_present(view, baseline, ref.states[phase], ref.baseline, ref.ledgers[phase], body)

    def record(self, run: Run) -> Run:
        """Keep the run; with findings, also the emulator's request log since the world was set up."""
        self.runs.append(run)
        if not (run.converged and run.findings.clean):
            name = f"requests-{len(self.runs):03}-{run.scenario.replace(' ', '_').replace('%', '')}-{run.phase}.json"
            (self.sandbox.workdir / name).write_text(json.dumps(self.sandbox.arm.requests(), indent=1))
            run.note += f" (ARM requests: {name})"
        self.log.write(json.dumps(asdict(run)) + "\n")
        self.log.flush()
        return run

    # scenarios ------------------------------------------------------------------------------------
    def warm_up(self, example: Example) -> None:
        """A clean run (no crash) of every phase: how long each takes, and the state after it. The
        operator handles an example's first resource more slowly: one setup first, unmeasured."""
        self.setup(example, "delete")
        self.act(example, "delete")
        if self.wait_done(example, "delete", self.args.timeout) is None:
            raise SystemExit(f"example {example.key}: the clean delete did not converge: {self.why_not(example)}")
        baseline = self.fresh_world()
        states, seconds, findings, ledgers = {}, {}, {}, {}
        for phase in PHASES:
            started = time.monotonic()
            self.act(example, phase)
            ended = self.wait_done(example, phase, self.args.timeout)
            if ended is None:
                raise SystemExit(f"example {example.key}: the clean {phase} did not converge: {self.why_not(example)}")
            seconds[phase] = ended - started
            states[phase] = view = self.snapshot()
            if phase == "delete":
                findings[phase] = compare_deleted(view, baseline)
            else:  # the clean run is the reference: only what its status names can be missing
                named = named_in_status(self.cr(example.name))
                ledgers[phase] = {key for key, source in named.items() if source == "ledger"}
                absent = [key for key in named if not (_ip_rule_present(view, key) if "#" in key else key in view)]
                findings[phase] = Findings(missing=[f"{key} (named in {named[key]})" for key in absent])
        self.references[example.key] = Reference(baseline, states, seconds, ledgers)
        for phase in PHASES:
            self.record(
                Run(
                    f"clean ex{example.key} (no crash)", example.key, phase, True, seconds[phase], None, findings[phase]
                )
            )
        durations = ", ".join(f"{phase} {seconds[phase]:.1f}s" for phase in PHASES)
        print(f"  example {example.key} clean run: {durations}", flush=True)

    def crash(self, example: Example) -> None:
        """RUNS lifecycles from a fresh world; a phase starts from the end of the previous one when that
        was clean, else from a fresh setup."""
        reference = self.references[example.key]
        for number in range(1, self.args.runs + 1):
            baseline, ready_for = self.fresh_world(), "create"
            for phase in PHASES:
                if ready_for != phase:
                    baseline = self.setup(example, phase)
                kill_after = self.random.uniform(0, reference.seconds[phase])
                self.act(example, phase)
                time.sleep(kill_after)
                late = self.done(example, phase)
                restarted = self.restart_operator()
                ended = self.wait_done(example, phase, self.args.timeout)
                findings = self.compare(example, phase, baseline) if ended is not None else Findings()
                note = "killed after it had converged" if late else ""
                note = note if ended is not None else self.why_not(example)
                run = self.record(
                    Run(
                        f"crash ex{example.key}",
                        example.key,
                        phase,
                        ended is not None,
                        None if ended is None else ended - restarted,
                        kill_after,
                        findings,
                        note,
                        None if self.up_at is None else self.up_at - restarted,
                    )
                )
                ready_for = (
                    PHASES[PHASES.index(phase) + 1] if phase != "delete" and run.converged and findings.clean else ""
                )
                self.progress(run, number)

    def inject_faults(self) -> None:
        """`fault_rate` of all ARM requests fail, in five ways of equal share."""
        kinds: list[Json] = [
            {"status": 500, "code": "InternalServerError"},
            {"status": 429, "code": "TooManyRequests", "retryAfter": 1},
            {"failLro": True, "code": "InternalServerError"},  # the long-running operation ends Failed
            {"disconnect": "before", "latencyMs": 2000},  # a timeout: nothing happened
            {"disconnect": "after", "latencyMs": 2000},  # a timeout: the write happened, its answer is lost
        ]
        share = 1 - (1 - self.args.fault_rate) ** (1 / len(kinds))  # drawn in turn: fault_rate in all
        for spec in kinds:
            self.sandbox.arm.fault(method="*", path="^/subscriptions/", probability=share, count=None, **spec)

    def faults(self) -> None:
        """The examples created, changed and deleted in turn while ARM fails requests; when the window
        ends, faults go off, the step under way must converge and the last example is deleted."""
        examples = [EXAMPLES[key] for key in self.args.examples]
        steps: Iterator[tuple[Example, str]] = ((e, p) for _ in iter(int, 1) for e in examples for p in PHASES)
        scenario = f"ARM faults {self.args.fault_rate:.0%}"
        baseline = self.fresh_world()
        self.inject_faults()
        started = time.monotonic()
        window_end = started + self.args.fault_seconds
        faults_on, number, skip_to_create = True, 0, False
        for example, phase in steps:
            if skip_to_create and phase != "create":
                continue
            skip_to_create = False
            if not faults_on and phase == "create":
                break  # the window is over and nothing is left to delete
            number += 1
            acted = time.monotonic()
            self.act(example, phase)
            ended = self.wait_done(example, phase, max(0.0, window_end - time.monotonic())) if faults_on else None
            note = "faults on"
            if ended is None and faults_on and time.monotonic() < window_end:
                note = f"with faults on: {self.why_not(example)}"  # Stalled: it will not converge
            elif ended is None:
                if faults_on:
                    self.sandbox.arm.clear_faults()
                    faults_on = False
                    print(f"  faults off after {time.monotonic() - started:.0f}s", flush=True)
                off = time.monotonic()
                ended = self.wait_done(example, phase, self.args.timeout)
                note = self.why_not(example) if ended is None else f"converged {ended - off:.1f}s after faults off"
            findings = self.compare(example, phase, baseline) if ended is not None else Findings()
            run = self.record(
                Run(
                    scenario,
                    example.key,
                    phase,
                    ended is not None,
                    None if ended is None else ended - acted,
                    None,
                    findings,
                    note,
                )
            )
            self.progress(run, number)
            if not (run.converged and findings.clean):
                baseline = self.fresh_world()  # the next example starts from a clean world
                skip_to_create = True
                if faults_on:
                    self.inject_faults()
            if faults_on and time.monotonic() >= window_end:
                self.sandbox.arm.clear_faults()
                faults_on = False
                print(f"  faults off after {time.monotonic() - started:.0f}s", flush=True)
        self.sandbox.arm.clear_faults()

    def apiserver(self, example: Example) -> None:
        """Restart the kube-apiserver (etcd kept) and inject drift as soon as it is back (`drift`), then
        again one interval after that was corrected (`drift2`: the periodic sweep must still run, not
        only the reconcile a re-listing may start); time each correction."""
        baseline = self.setup(example, "change")
        reference = self.references[example.key]
        created = sorted(set(reference.states["create"].bodies) - set(reference.baseline.bodies))
        for number in range(1, self.args.restarts + 1):
            self.sandbox.kube.restart_apiserver(down_seconds=self.args.down_seconds)
            for phase in ("drift", "drift2"):
                if phase == "drift2":
                    time.sleep(self.args.interval + 1)
                what, corrected = example.drift(self.sandbox, created)
                drifted = time.monotonic()
                fixed = None
                while time.monotonic() < drifted + 3 * (self.args.interval + 10):
                    if corrected():
                        fixed = time.monotonic()
                        break
                    self.check_operator()
                    time.sleep(0.25)
                latency = None if fixed is None else fixed - drifted
                if latency is not None:
                    self.drift_latencies.append(latency)
                ended = self.wait_done(example, "create", self.args.timeout)
                findings = self.compare(example, "create", baseline) if ended is not None else Findings()
                note = f"{what}: corrected after {latency:.1f}s" if latency is not None else f"{what}: not corrected"
                note += "" if ended is not None else f"; {self.why_not(example)}"
                converged = latency is not None and ended is not None
                run = self.record(
                    Run(
                        f"apiserver restart ex{example.key}",
                        example.key,
                        phase,
                        converged,
                        latency,
                        None,
                        findings,
                        note,
                    )
                )
                self.progress(run, number)
        self.act(example, "delete")
        ended = self.wait_done(example, "delete", self.args.timeout)
        findings = self.compare(example, "delete", baseline) if ended is not None else Findings()
        note = "delete after the restarts" if ended is not None else self.why_not(example)
        self.record(
            Run(
                f"apiserver restart ex{example.key}",
                example.key,
                "delete",
                ended is not None,
                None,
                None,
                findings,
                note,
            )
        )

    def progress(self, run: Run, number: int) -> None:
        f = run.findings
        state = "converged" if run.converged else "NOT CONVERGED"
        recovery = "" if run.recovery is None else f" in {run.recovery:.1f}s"
        kill = "" if run.kill_after is None else f" (killed {run.kill_after:.1f}s in)"
        counts = (
            f"missing {len(f.missing)} dup {len(f.duplicates)} left {len(f.leftovers)} wrong {len(f.wrongly_deleted)}"
        )
        print(f"  {run.scenario} {run.phase} #{number}{kill}: {state}{recovery}; {counts} {run.note}", flush=True)


# ---------------------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------------------
def _seconds(values: list[float]) -> tuple[str, str]:
    if not values:
        return "-", "-"
    return f"{statistics.median(values):.1f}s", f"{max(values):.1f}s"


COUNTS = ("missing", "duplicates", "leftovers", "wrongly_deleted")
COLUMNS = (("scenario", 30), ("phase", 6), ("runs", 5), ("converged", 9), ("missing", 7), ("duplicates", 10),
           ("leftovers", 9), ("wrongly deleted", 15), ("recovery p50", 12), ("max", 7))  # fmt: skip


def _line(cells: list[str]) -> str:
    return " ".join(f"{cell:{width}}" if i < 2 else f"{cell:>{width}}" for i, (cell, (_, width)) in
                    enumerate(zip(cells, COLUMNS, strict=True)))  # fmt: skip


def _described(item: str) -> str:
    """`Microsoft.Network/privateDnsZones/virtualNetworkLinks vnet-x-link` for an id, with its verb if any."""
    verb, _, rest = item.partition(" ") if not item.startswith("/") else ("", "", item)
    resource_id, _, suffix = rest.partition(" ")
    described = f"{kind(resource_id)} {resource_id.rsplit('/', 1)[-1]}" if resource_id.startswith("/") else rest
    return " ".join(part for part in (verb, described, suffix) if part)


def report(chaos: Chaos) -> int:
    rows: dict[tuple[str, str], list[Run]] = {}
    for run in chaos.runs:
        rows.setdefault((run.scenario, run.phase), []).append(run)
    header = _line([name for name, _ in COLUMNS])
    print("\n" + header + "\n" + "-" * len(header))
    failed = False
    for (scenario, phase), runs in rows.items():
        counts = {name: sum(len(getattr(run.findings, name)) for run in runs) for name in COUNTS}
        applies = {"missing": phase != "delete", "duplicates": phase != "delete"}
        converged = sum(run.converged for run in runs)
        p50, worst = _seconds([run.recovery for run in runs if run.recovery is not None])
        shown = [str(counts[name]) if applies.get(name, True) else "-" for name in COUNTS]
        print(_line([scenario, phase, str(len(runs)), str(converged), *shown, p50, worst]))
        failed |= converged < len(runs) or any(counts.values())
    bound = chaos.args.interval + 10
    drift_runs = [run for run in chaos.runs if run.phase.startswith("drift")]
    if drift_runs:
        p50, worst = _seconds(chaos.drift_latencies)
        within = all(run.converged for run in drift_runs) and max(chaos.drift_latencies, default=math.inf) <= bound
        print(
            f"\nAPI-server restart: drift corrected p50 {p50}, max {worst} after it was injected; "
            f"bound: interval {chaos.args.interval}s + 10s = {bound}s: {'PASS' if within else 'FAIL'}"
        )
        failed |= not within
    per_phase = Counter((run.example, run.phase) for run in chaos.runs if run.scenario.startswith("crash"))
    for example in sorted({example for example, _ in per_phase}):
        fewest = min(count for (key, _), count in per_phase.items() if key == example)
        verdict = "meets" if fewest >= 25 else "is below"
        print(f"crash runs of example {example}: {fewest} or more per phase ({verdict} the done criterion's 25)")
    if chaos.operator_exits:
        print(f"the operator exited by itself {chaos.operator_exits} time(s)")
        failed = True
    for (scenario, phase), runs in rows.items():
        startups = [run.startup for run in runs if run.startup is not None]
        late = sum(run.note.startswith("killed after") for run in runs)
        if startups:
            p50, worst = _seconds(startups)
            print(
                f"{scenario} {phase}: operator start p50 {p50} max {worst}; "
                f"{late} of {len(runs)} kills came after convergence"
            )
    print("\nFindings:" if failed else "\nNo findings.")
    if failed:
        print(f"  (every run: {chaos.sandbox.workdir}/runs.jsonl; ARM request logs of runs with findings beside it)")
    for (scenario, phase), runs in rows.items():
        detail: Counter[str] = Counter()
        for run in runs:
            for name in COUNTS:
                for item in getattr(run.findings, name):
                    detail[f"{name.replace('_', ' ')}: {_described(item)}"] += 1
            if not run.converged:
                detail[f"not converged ({run.note or 'timeout'})"] += 1
        for text, count in sorted(detail.items()):
            print(f"  {scenario} {phase}: {text} (x{count})")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--runs", type=int, default=int(os.environ.get("RUNS") or 25), help="crash runs per example and phase"
    )
    parser.add_argument("--examples", nargs="+", default=list(EXAMPLES), choices=list(EXAMPLES))
    parser.add_argument(
        "--scenarios", nargs="+", default=["crash", "faults", "apiserver"], choices=["crash", "faults", "apiserver"]
    )
    parser.add_argument("--fault-rate", type=float, default=0.2, help="share of ARM requests that fail")
    parser.add_argument("--fault-seconds", type=float, default=180, help="how long faults stay on")
    parser.add_argument("--restarts", type=int, default=3, help="kube-apiserver restarts per example")
    parser.add_argument("--down-seconds", type=float, default=5, help="how long the kube-apiserver stays down")
    parser.add_argument("--interval", type=int, default=10, help="drift interval (seconds, at least 10)")
    parser.add_argument("--timeout", type=float, default=180, help="seconds a run may take to converge")
    parser.add_argument("--lro-seconds", type=float, default=0.5, help="how long the emulator's operations run")
    parser.add_argument("--seed", type=int, default=None, help="random seed for the kill moments")
    args = parser.parse_args()
    args.seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    workdir = REPO / ".cache" / "chaos"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    print(
        f"chaos: {args.runs} runs per example and phase, examples {' '.join(args.examples)}, "
        f"scenarios {' '.join(args.scenarios)}, seed {args.seed}; logs in {workdir}",
        flush=True,
    )
    started = time.monotonic()
    for example in args.examples:
        _manifest(EXAMPLES[example].file)
    chaos = Chaos(args, workdir)
    error = None
    try:
        chaos.start()
        for key in args.examples:
            chaos.warm_up(EXAMPLES[key])
        if "crash" in args.scenarios:
            for key in args.examples:
                chaos.crash(EXAMPLES[key])
        if "faults" in args.scenarios:
            chaos.faults()
        if "apiserver" in args.scenarios:
            for key in args.examples:
                chaos.apiserver(EXAMPLES[key])
    except (Exception, SystemExit) as failure:  # the runs so far still make a table
        error = failure
    finally:
        chaos.stop()
    status = report(chaos)
    if error is not None:
        print(f"\nstopped early: {type(error).__name__}: {str(error)[:2000]}")
        status = 1
    print(f"\ntotal {math.ceil(time.monotonic() - started)}s")
    return status


if __name__ == "__main__":
    sys.exit(main())
