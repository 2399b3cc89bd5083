"""`make bench-scale`: many SecureMLWorkspaces against the ARM emulator with ARM's throttling.

N copies of the examples (a mix of all six by default), spread over S workload subscriptions, each
with its own connectivity subscription (hub VNet and firewall), are applied in batches. The script
measures the time to all Ready and the ARM calls it took, then watches M minutes of steady state (ARM
reads, writes and 429s per minute, drift sweep intervals and their stretch from the operator's metrics,
the operator's RSS and CPU, status patches per minute and what they changed), then changes
publicNetworkAccess on random Ready workspaces behind the operator's back and times each correction.
It prints one table and a JSON line with the same figures. How each figure is measured, and what a
run of 1000 costs: docs/bench-scale.md.
Workdir (logs): .cache/bench-scale/.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import itertools
import json
import math
import os
import random
import shutil
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hack"))

from arm_calls import EXAMPLES
from chaos import Kube, converged, kind, stalled
from sandbox import NAMESPACE, REPO, Sandbox

from armemu.seed import CONNECTIVITY_SUBSCRIPTION, LITWARE, SUBSCRIPTION, seed_litware
from armemu.state import State, new_etag
from kubeharness import free_port
from secureml_operator.desired.firewall_policy import group_priority

Json = dict[str, Any]
LIST = "/apis/secureml.io/v1alpha1/securemlworkspaces"
# ARM's per-subscription limits (docs/emulator.md, "Throttling"), set explicitly on the emulator.
THROTTLING = {
    "reads_burst": 250,
    "reads_per_second": 25,
    "writes_burst": 200,
    "writes_per_second": 10,
    "deletes_burst": 200,
    "deletes_per_second": 10,
}
CLIENTS_VNET = f"{LITWARE}/providers/Microsoft.Network/virtualNetworks/vnet-litware-clients"
ENDPOINTS_PER_CLIENT_SUBNET = 200  # a /24 holds 251 private endpoints: new subnets well before that
SPOKES_PER_OCTET = 64  # each customer VNet gets its own /22 in 10.3.0.0 and up (10.1 hub, 10.2 clients)
WORKSPACES = "Microsoft.MachineLearningServices/workspaces"
GROUPS_PER_POLICY = 90  # Azure's limit of rule collection groups in one firewall policy (not emulated)
# The operator's gauges of its sweeps (secureml_operator/metrics.py): status.drift.lastCheckTime is only a
# heartbeat, so completed checks and the intervals in effect are read from /metrics.
LAST_CHECK = "secureml_drift_last_check_timestamp_seconds"
EFFECTIVE_INTERVAL = "secureml_drift_effective_interval_seconds"
STRETCH = "secureml_sweep_interval_stretch"
# The operator's histograms of its sweeps: how late each started (waiting for a free worker) and how long
# its walk of Azure took. Together they say why a resource went unchecked past its interval.
SWEEP_START_DELAY = "secureml_sweep_start_delay_seconds"
SWEEP_WALK = "secureml_reconcile_duration_seconds"  # with mode="drift"
# Seconds between scrapes of /metrics in steady state: the chart's ServiceMonitor interval. A scrape
# renders every resource's series, so scraping more often than Prometheus would inflates the CPU measured.
SCRAPE_INTERVAL = 30
SCRAPE_TIMEOUT = 5  # seconds; a missed scrape only delays seeing a check (the gauge holds its time)
LATE = 1.1  # a resource is unchecked once a gap exceeds its effective interval by 10 %
# Where a resource's first span past the limit was (Sweeps.unchecked)
NEVER_SEEN = "never in the gauges"
BEFORE_FIRST = "up to its first check in the window"
BETWEEN = "between two checks in the window"
SINCE_LAST = "since its last check"
# The field of status a heartbeat patch moves (StatusWatch): every other field it changes is a change
HEARTBEAT = "drift.lastCheckTime"


# ---------------------------------------------------------------------------------------------------
# Azure as the copies need it: subscriptions, the seed in each, unique names and address spaces
# ---------------------------------------------------------------------------------------------------
def subscription_pairs(count: int) -> list[tuple[str, str]]:
    """(workload, connectivity) subscription ids: the seed's own pair first, then made-up ones."""
    made_up = [(f"00000000-0000-0000-0000-{i:012d}", f"11111111-1111-1111-1111-{i:012d}") for i in range(1, count)]
    return [(SUBSCRIPTION, CONNECTIVITY_SUBSCRIPTION), *made_up]


def moved(text: str, pair: tuple[str, str]) -> str:
    return text.replace(SUBSCRIPTION, pair[0]).replace(CONNECTIVITY_SUBSCRIPTION, pair[1])


def client_subnet(index: int) -> str:
    return "private-endpoints" if index == 0 else f"private-endpoints-{index}"


def seed(state: State, pairs: list[tuple[str, str]], client_subnets: int) -> None:
    """What seed_litware writes, in every pair of subscriptions (each copy with its own resource GUIDs),
    and `client_subnets` private-endpoint subnets in each client VNet (10.2.1.0/24, 10.2.2.0/24, ...)."""
    for pair in pairs:
        template = State()
        seed_litware(template)
        for index in range(1, client_subnets):
            subnet = {"properties": {"addressPrefix": f"10.2.{index + 1}.0/24"}, "etag": new_etag()}
            template.put(f"{CLIENTS_VNET}/subnets/{client_subnet(index)}", subnet, CLIENTS_VNET)
        for resource in template.resources.values():
            parent = moved(resource.parent, pair) if resource.parent else None
            state.put(moved(resource.id, pair), json.loads(moved(json.dumps(resource.body), pair)), parent)


def copies(args: argparse.Namespace, pairs: list[tuple[str, str]]) -> tuple[list[Json], int]:
    """The manifests, and how many client subnets each subscription needs. Copy k is example k % E in
    subscription pair (k // E) % S; it gets the suffix k in its name, workspace name and VNet name, its
    own /22 when it creates a VNet, and a client subnet with room for its private endpoint."""
    templates = [yaml.safe_load((REPO / "examples" / example).read_text()) for example in args.examples]
    width = max(4, len(str(args.count - 1)))
    in_client_subnets: Counter[int] = Counter()
    priorities: dict[str, set[int]] = {}
    spokes = renamed = 0
    manifests = []
    for k in range(args.count):
        which = k // len(templates) % len(pairs)
        manifest = json.loads(moved(json.dumps(templates[k % len(templates)]), pairs[which]))
        suffix = f"{k:0{width}d}"
        manifest["metadata"] = {"name": f"{manifest['metadata']['name']}-{suffix}", "namespace": NAMESPACE}
        spec = manifest["spec"]
        spec["azure"]["credentialRef"] = {"name": "azure-credentials"}
        spec["workspace"]["name"] += f"-{suffix}"
        spec["drift"] = {"mode": "Enforce", "interval": f"{args.interval}s"}
        network = spec["outbound"].get("customerNetwork")
        policy = str(((network or {}).get("egress") or {}).get("firewall", {}).get("policyId") or "").lower()
        if policy:
            # The workspace's rule collection group in the hub's policy takes a priority hashed from its
            # name; Azure refuses a second group with the same priority: rename, as a team would.
            while group_priority(spec["workspace"]["name"]) in priorities.setdefault(policy, set()):
                spec["workspace"]["name"] += "x"
                renamed += 1
            priorities[policy].add(group_priority(spec["workspace"]["name"]))
        if network:
            # Spokes peered to one hub must not overlap (Azure refuses the peering); other VNets may,
            # but the emulator hands out private endpoint addresses per prefix, not per subnet.
            second, third = 3 + spokes // SPOKES_PER_OCTET, spokes % SPOKES_PER_OCTET * 4
            spokes += 1
            network["virtualNetwork"]["name"] += f"-{suffix}"
            network["virtualNetwork"]["addressSpace"] = [f"10.{second}.{third}.0/22"]
            for offset, subnet in enumerate(network["subnets"].values()):
                subnet["addressPrefix"] = f"10.{second}.{third + offset}.0/24"
        endpoint = (spec.get("inbound") or {}).get("privateEndpoint") or {}
        if "subnetId" in endpoint:
            index = in_client_subnets[which] // ENDPOINTS_PER_CLIENT_SUBNET
            in_client_subnets[which] += 1
            endpoint["subnetId"] = moved(f"{CLIENTS_VNET}/subnets/{client_subnet(index)}", pairs[which])
        manifests.append(manifest)
    crowded = max((len(used) for used in priorities.values()), default=0)
    if renamed or crowded > GROUPS_PER_POLICY:
        print(
            f"  {renamed} workspace(s) renamed for a free rule collection group priority; up to {crowded} groups "
            f"in one firewall policy (Azure allows {GROUPS_PER_POLICY}: the emulator does not refuse more)"
        )
    needed = max((math.ceil(n / ENDPOINTS_PER_CLIENT_SUBNET) for n in in_client_subnets.values()), default=1)
    if spokes > (256 - 3) * SPOKES_PER_OCTET or needed > 254:
        raise SystemExit("too many copies for the address plan (10.3.0.0-10.255.255.255 in /22s)")
    return manifests, needed


def workspace_id(manifest: Json) -> str:
    azure = manifest["spec"]["azure"]
    group = f"/subscriptions/{azure['subscriptionId']}/resourceGroups/{azure['resourceGroup']}"
    return f"{group}/providers/{WORKSPACES}/{manifest['spec']['workspace']['name']}"


# ---------------------------------------------------------------------------------------------------
# Measuring: the emulator's request log, the API server, the operator's process
# ---------------------------------------------------------------------------------------------------
def drain(state: State) -> Counter[str]:
    """The operator's ARM requests logged since the last drain (the emulator runs in this process and
    only appends to its log), counted and dropped: reads, writes (deletes included), 429s, and writes
    by method and resource type ("PUT Microsoft.Network/virtualNetworks")."""
    entries = state.requests[:]
    del state.requests[: len(entries)]
    counts: Counter[str] = Counter()
    for entry in entries:
        if entry["caller"] != "client":
            continue  # the drift this script injects
        read = entry["method"] in ("GET", "HEAD")
        counts["reads" if read else "writes"] += 1
        counts["429s"] += entry["status"] == 429
        if not read:
            counts[f"{entry['method']} {kind(entry['path'])}"] += 1
    return counts


def get(kube: Kube, path: str) -> bytes:
    with urllib.request.urlopen(kube.server + path, context=kube.context, timeout=120) as response:
        body: bytes = response.read()
        return body


def workspaces(kube: Kube) -> list[Json]:
    items: list[Json] = json.loads(get(kube, LIST))["items"]
    return items


def status_patches(kube: Kube) -> int:
    """The API server's count of PATCHes of the custom resources' status subresource."""
    total = 0.0
    for line in get(kube, "/metrics").decode().splitlines():
        if line.startswith("apiserver_request_total{") and all(
            label in line for label in ('resource="securemlworkspaces"', 'subresource="status"', 'verb="PATCH"')
        ):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def status_fields_changed(before: Json, after: Json, prefix: str = "") -> set[str]:
    """The fields of status that differ between two versions: a map's keys one level down
    ("drift.effectiveInterval"), anything else as a whole ("conditions")."""
    changed = set()
    for key in before.keys() | after.keys():
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if not prefix and isinstance(old, dict) and isinstance(new, dict):
            changed |= status_fields_changed(old, new, f"{key}.")
        else:
            changed.add(prefix + key)
    return changed


class StatusWatch:
    """The custom resources' watch events while it is open, sorted by what their status patch changed:
    only the last-check time (a heartbeat), or something else (a change, counted by field). Metadata-only
    events are left out; a patch that changes nothing makes no event at all."""

    def __init__(self, kube: Kube, seconds: float) -> None:
        listed = json.loads(get(kube, LIST))
        self.status = {item["metadata"]["name"]: item.get("status") or {} for item in listed["items"]}
        self.heartbeats, self.changes, self.fields = 0, 0, Counter[str]()
        self.error: str | None = None
        self.open = True
        query = f"?watch=true&resourceVersion={listed['metadata']['resourceVersion']}&timeoutSeconds={int(seconds)}"
        threading.Thread(target=self._follow, args=(kube, LIST + query, seconds), daemon=True).start()

    def _follow(self, kube: Kube, path: str, seconds: float) -> None:
        try:
            with urllib.request.urlopen(kube.server + path, context=kube.context, timeout=seconds + 60) as stream:
                for line in stream:
                    if not self.open:
                        return
                    self._seen(json.loads(line))
        except (OSError, ValueError) as error:
            self.error = self.error or f"{type(error).__name__}: {error}"

    def _seen(self, event: Json) -> None:
        if event["type"] == "ERROR":
            self.error = self.error or str(event["object"].get("message"))
            return
        name, status = event["object"]["metadata"]["name"], event["object"].get("status") or {}
        fields = status_fields_changed(self.status.get(name, {}), status)
        self.status[name] = status
        if event["type"] != "MODIFIED" or not fields:
            return
        if fields == {HEARTBEAT}:
            self.heartbeats += 1
        else:
            self.changes += 1
            self.fields.update(fields - {HEARTBEAT})

    def close(self) -> None:
        """No more events counted (the stream itself ends at its timeout)."""
        self.open = False


@dataclass
class Histogram:
    """One histogram as scraped: cumulative counts by upper bound, the sum and the count."""

    buckets: dict[float, float] = field(default_factory=dict)
    sum: float = 0.0
    count: float = 0.0

    def since(self, earlier: Histogram) -> Histogram:
        """What was observed between the two scrapes."""
        return Histogram(
            {bound: n - earlier.buckets.get(bound, 0.0) for bound, n in self.buckets.items()},
            self.sum - earlier.sum,
            self.count - earlier.count,
        )

    def mean(self) -> float | None:
        return round(self.sum / self.count, 1) if self.count else None

    def bound(self, q: float) -> float | None:
        """The upper bound of the bucket that holds quantile `q` (%): the p95 is at most this."""
        wanted = q / 100 * self.count
        return next((bound for bound, n in sorted(self.buckets.items()) if self.count and n >= wanted), None)


@dataclass
class Gauges:
    """One scrape of the operator's sweep gauges: per resource name (in NAMESPACE) and per subscription."""

    last_check: dict[str, float] = field(default_factory=dict)  # Unix time of the last completed check
    interval: dict[str, float] = field(default_factory=dict)  # effective drift interval, s
    stretch: dict[str, float] = field(default_factory=dict)  # by lower-case subscription id
    start_delay: Histogram = field(default_factory=Histogram)
    walk: Histogram = field(default_factory=Histogram)  # drift sweeps' walks


def sweep_gauges(text: str) -> Gauges:
    """The sweep gauges in the operator's /metrics text. A series with 0 (created, never set) is left
    out: as a check time it would open a gap from 1970."""
    gauges = Gauges()
    per_resource = {LAST_CHECK: gauges.last_check, EFFECTIVE_INTERVAL: gauges.interval}
    histograms = {SWEEP_START_DELAY: gauges.start_delay, SWEEP_WALK: gauges.walk}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            histogram = histograms.get(family.name)
            if histogram is not None and labels.get("mode", "drift") == "drift":
                if sample.name.endswith("_bucket"):
                    histogram.buckets[float(labels["le"])] = sample.value
                elif sample.name.endswith("_sum"):
                    histogram.sum = sample.value
                elif sample.name.endswith("_count"):
                    histogram.count = sample.value
            elif sample.name == STRETCH and "subscription" in labels:
                gauges.stretch[labels["subscription"]] = sample.value
            elif sample.name in per_resource and labels.get("resource_namespace") == NAMESPACE and sample.value > 0:
                per_resource[sample.name][labels.get("resource_name", "")] = sample.value
    return gauges


def scrape(url: str) -> Gauges | None:
    """The operator's gauges, or None when /metrics does not answer in time (the operator shares two
    cores with everything else here): the caller skips that poll."""
    try:
        with urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT) as response:
            return sweep_gauges(response.read().decode())
    except (OSError, http.client.HTTPException, ValueError):
        return None


class Sweeps:
    """Completed checks per resource over a window, from the changes of its last-check gauge between
    scrapes, with the last effective interval and stretch seen."""

    def __init__(self) -> None:
        self.checks: dict[str, list[float]] = {}
        self.planned: dict[str, list[float | None]] = {}  # per check, the effective interval seen with it
        self.intervals: dict[str, float] = {}
        self.stretch: dict[str, float] = {}
        self.first: Gauges | None = None  # the histograms of the first and the last scrape
        self.last: Gauges | None = None
        self.scrapes = self.missed = 0

    def add(self, gauges: Gauges | None) -> None:
        self.scrapes += 1
        if gauges is None:
            self.missed += 1
            return
        for name, at in gauges.last_check.items():
            seen = self.checks.setdefault(name, [])
            if not seen or at != seen[-1]:
                seen.append(at)
                # the interval the operator scheduled the next sweep on, once this check ended
                self.planned.setdefault(name, []).append(gauges.interval.get(name))
        self.intervals.update(gauges.interval)
        self.stretch = gauges.stretch or self.stretch
        self.first, self.last = self.first or gauges, gauges

    def observed(self, histogram: str) -> Histogram:
        """What one of the sweep histograms observed from the first scrape to the last."""
        if self.first is None or self.last is None:
            return Histogram()
        return getattr(self.last, histogram).since(getattr(self.first, histogram))

    def gaps(self, name: str) -> list[float]:
        return [b - a for a, b in itertools.pairwise(self.checks.get(name, []))]

    def unchecked(self, names: Iterable[str], fallback: float, ended: float) -> Counter[str]:
        """Resources never seen checked, or with a gap (the last one up to `ended`, Unix time) above the
        effective interval its sweep was scheduled on (`fallback` when not exported) + 10 %: a stretch that
        changes applies from each resource's next sweep. Counted by the first such span: before the
        window's first check, between two in the window, or since the last one (none came in time)."""
        late: Counter[str] = Counter()
        for name in names:
            seen = self.checks.get(name)
            if not seen:
                late[NEVER_SEEN] += 1
                continue
            planned = [self.intervals.get(name, fallback) if p is None else p for p in self.planned[name]]
            spans = [*self.gaps(name), ended - seen[-1]]
            for index, (span, interval) in enumerate(zip(spans, planned, strict=True)):
                if span > interval * LATE:
                    late[SINCE_LAST if index == len(spans) - 1 else BEFORE_FIRST if index == 0 else BETWEEN] += 1
                    break
        return late


def seconds_since_epoch(timestamp: str) -> float:
    return datetime.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC).timestamp()


def ready_since(body: Json) -> float | None:
    """When Ready last turned True (its lastTransitionTime), for a converged resource."""
    conditions = (body.get("status") or {}).get("conditions") or []
    ready = next((c for c in conditions if c.get("type") == "Ready"), {})
    stamp = ready.get("lastTransitionTime")
    return seconds_since_epoch(stamp) if converged(body) and stamp else None


class Process:
    """RSS and CPU time of one process, from /proc."""

    TICKS = os.sysconf("SC_CLK_TCK")

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.rss: list[float] = []  # MiB, one per sample

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self.TICKS  # utime + stime

    def sample(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                self.rss.append(int(line.split()[1]) / 1024)
        return self.rss[-1]


def percentile(values: list[float], q: float) -> float | None:
    """Nearest rank."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


# ---------------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------------
class Scale:
    def __init__(self, args: argparse.Namespace, sandbox: Sandbox) -> None:
        self.args = args
        self.sandbox = sandbox
        self.figures: Json = {}
        self.manifests: list[Json] = []
        self.kube: Kube
        self.process: Process
        self.metrics = ""  # the operator's /metrics (SMLW_METRICS_PORT)
        self.largest_interval = 0.0  # the largest effective drift interval seen in steady state, s

    @property
    def state(self) -> State:
        return self.sandbox.arm.state

    def start(self) -> None:
        pairs = subscription_pairs(self.args.subscriptions)
        self.manifests, client_subnets = copies(self.args, pairs)
        seed(self.state, pairs, client_subnets)  # before the emulator serves: nothing else touches its state
        port = free_port()
        self.metrics = f"http://127.0.0.1:{port}/metrics"
        settings = {
            "SMLW_ALLOWED_SUBSCRIPTIONS": ",".join(s for pair in pairs for s in pair),
            "SMLW_METRICS_PORT": str(port),
        }
        if self.args.workers:
            settings["SMLW_MAX_WORKERS"] = str(self.args.workers)
        self.sandbox.start(**settings)
        self.sandbox.arm.configure(**THROTTLING)
        assert self.sandbox.operator is not None
        self.kube = Kube(self.sandbox.kube.kubeconfig)
        self.process = Process(self.sandbox.operator.pid)
        self.sandbox.wait_operator_up()
        self.figures["rss_idle_mib"] = round(self.process.sample(), 1)

    def alive(self) -> None:
        operator = self.sandbox.operator
        if operator is None or operator.poll() is not None:
            raise SystemExit(f"the operator exited; log: {self.sandbox.workdir / 'operator.log'}")
        self.process.sample()

    def ticks(self, seconds: float, until: float) -> Iterator[float]:
        """Every `seconds` until the monotonic time `until`: the operator checked on each time."""
        while (now := time.monotonic()) < until:
            self.alive()
            yield now
            time.sleep(max(0.0, min(seconds - (time.monotonic() - now), until - time.monotonic())))

    def to_ready(self) -> None:
        args = self.args
        started, wall = time.monotonic(), time.time()
        calls = drain(self.state)  # the operator's start-up
        for first in range(0, len(self.manifests), args.batch):
            batch = {"apiVersion": "v1", "kind": "List", "items": self.manifests[first : first + args.batch]}
            self.sandbox.kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps(batch))
            calls += drain(self.state)
        applied = time.monotonic() - started
        shown, ready = started, []
        for now in self.ticks(args.poll, started + args.timeout):
            bodies = workspaces(self.kube)
            calls += drain(self.state)
            ready = [since for body in bodies if (since := ready_since(body)) is not None]
            if len(ready) == len(self.manifests):
                break
            if now - shown >= 30:
                shown = now
                stuck = sum(stalled(body) for body in bodies)
                gauges = scrape(self.metrics)
                stretch = max((gauges.stretch if gauges else {}).values(), default=None)
                print(
                    f"  {now - started:5.0f}s: {len(ready)}/{len(self.manifests)} Ready, {stuck} Stalled; ARM "
                    f"{calls['reads']} reads, {calls['writes']} writes, {calls['429s']} 429s so far"
                    + ("" if stretch is None else f"; sweep stretch up to x{stretch:.3g}")
                    + f"; operator RSS {self.process.rss[-1]:.0f} MiB",
                    flush=True,
                )
        else:
            raise SystemExit(
                f"not all Ready after {args.timeout:.0f}s: {len(ready)} of {len(self.manifests)}; "
                f"operator log: {self.sandbox.workdir / 'operator.log'}"
            )
        self.figures.update(
            applied_seconds=round(applied, 1),
            ready_seconds=round(max(ready) - wall, 1),  # to the last lastTransitionTime (1 s resolution)
            ready_reads=calls["reads"],
            ready_writes=calls["writes"],
            ready_429s=calls["429s"],
        )
        print(f"  all Ready after {self.figures['ready_seconds']:.0f}s", flush=True)

    def steady(self) -> None:
        """M minutes: ARM calls, sweeps (the operator's gauges: status.drift.lastCheckTime is only a
        heartbeat), the operator's usage, status patches and what they changed."""
        args = self.args
        calls = drain(self.state)
        sweeps = Sweeps()
        patches, cpu, rss_from = status_patches(self.kube), self.process.cpu_seconds(), len(self.process.rss)
        watch = StatusWatch(self.kube, 60 * args.minutes + 60)
        started = scraped = time.monotonic()
        for now in self.ticks(args.poll, started + 60 * args.minutes):
            if now - scraped >= SCRAPE_INTERVAL:
                scraped = now
                sweeps.add(scrape(self.metrics))
                self.largest_interval = max([self.largest_interval, *sweeps.intervals.values()])
            calls += drain(self.state)
        sweeps.add(scrape(self.metrics))  # the checks up to the window's end
        minutes = (time.monotonic() - started) / 60
        ended = time.time()
        calls += drain(self.state)
        patches, cpu = status_patches(self.kube) - patches, self.process.cpu_seconds() - cpu
        watch.close()
        if watch.error:
            print(f"  the watch of status patches ended early ({watch.error}): their split is partial", flush=True)
        if sweeps.missed:
            print(f"  {sweeps.missed} of {sweeps.scrapes} scrapes of {self.metrics} failed", flush=True)
        if not sweeps.checks:
            print(f"  no {LAST_CHECK} in {self.metrics}: every resource counts as unchecked", flush=True)
        names = [manifest["metadata"]["name"] for manifest in self.manifests]
        every_gap = [round(gap, 1) for name in names for gap in sweeps.gaps(name)]
        effective = [sweeps.intervals[name] for name in names if name in sweeps.intervals]
        steady_rss = self.process.rss[rss_from:]
        start_delay, walk = sweeps.observed("start_delay"), sweeps.observed("walk")
        unchecked = sweeps.unchecked(names, args.interval, ended)
        self.figures.update(
            steady_minutes=round(minutes, 2),
            reads_per_minute=round(calls["reads"] / minutes, 1),
            writes_per_minute=round(calls["writes"] / minutes, 1),
            throttled_per_minute=round(calls["429s"] / minutes, 1),
            sweep_gaps=len(every_gap),
            sweep_p50=percentile(every_gap, 50),
            sweep_p95=percentile(every_gap, 95),
            sweep_p99=percentile(every_gap, 99),
            # A gap between two checks, or from the last check to the window's end while none came.
            unchecked_past_limit=sum(unchecked.values()),
            unchecked_by_span=dict(unchecked),
            sweep_delay_mean=start_delay.mean(),
            sweep_delay_p95=start_delay.bound(95),
            sweep_walk_mean=walk.mean(),
            sweep_walk_p95=walk.bound(95),
            effective_interval_p50=percentile([round(v, 1) for v in effective], 50),
            effective_interval_max=round(max(effective), 1) if effective else None,
            stretch_by_subscription={sub: round(factor, 2) for sub, factor in sorted(sweeps.stretch.items())},
            rss_steady_mib=round(sorted(steady_rss)[len(steady_rss) // 2], 1) if steady_rss else None,
            cpu_seconds_per_minute=round(cpu / minutes, 2),
            status_patches_per_minute=round(patches / minutes, 1),
            status_heartbeats_per_minute=round(watch.heartbeats / minutes, 1),
            status_changes_per_minute=round(watch.changes / minutes, 1),
            status_changed_fields=dict(watch.fields.most_common()),
            steady_writes={key: n for key, n in sorted(calls.items()) if " " in key},
        )

    def inject(self, resource_id: str, value: str) -> None:
        """PATCH publicNetworkAccess as someone with the portal would, again while ARM throttles (429)."""
        for _ in range(30):
            try:
                self.sandbox.arm.rest("PATCH", resource_id, {"properties": {"publicNetworkAccess": value}})
                return
            except urllib.error.HTTPError as error:
                if error.code != 429:
                    raise
                time.sleep(1)
        raise SystemExit(f"could not change {resource_id}: throttled for 30 s")

    def public_access(self, resource_id: str) -> str | None:
        resource = self.state.get(resource_id)
        return None if resource is None else (resource.body.get("properties") or {}).get("publicNetworkAccess")

    def drift(self) -> None:
        """Flip publicNetworkAccess (Disabled <-> Enabled) on random Ready workspaces, each at a random
        moment within one interval, and time until each is back to what it was (read from the
        emulator's state every 0.5 s)."""
        args = self.args
        draw = random.Random(args.seed)
        ready = {body["metadata"]["name"] for body in workspaces(self.kube) if converged(body)}
        candidates = [workspace_id(m) for m in self.manifests if m["metadata"]["name"] in ready]
        # The largest effective interval seen, not --interval: the operator stretches sweeps that would
        # not fit ARM's read budget, and a correction waits for the resource's next sweep.
        interval = self.largest_interval or float(args.interval)
        started = time.monotonic()
        chosen = draw.sample(candidates, min(args.drift_samples, len(candidates)))
        due = {resource_id: started + draw.uniform(0, interval) for resource_id in chosen}
        before: dict[str, str | None] = {}
        injected: dict[str, float] = {}
        latencies: dict[str, float] = {}
        # Injected within one interval; each correction waited for three intervals (and a minute).
        horizon = interval + 3 * interval + 60
        for now in self.ticks(0.5, started + horizon):
            for resource_id in [r for r, at in due.items() if r not in injected and at <= now]:
                before[resource_id] = self.public_access(resource_id)
                self.inject(resource_id, "Enabled" if before[resource_id] == "Disabled" else "Disabled")
                injected[resource_id] = time.monotonic()
            for resource_id in set(injected) - set(latencies):
                if self.public_access(resource_id) == before[resource_id]:
                    latencies[resource_id] = time.monotonic() - injected[resource_id]
            drain(self.state)
            if len(latencies) == len(due):
                break
        values = list(latencies.values())
        samples = [{"id": r, "injected": injected.get(r, 0) - started, "latency": latencies.get(r)} for r in due]
        (self.sandbox.workdir / "drift.json").write_text(json.dumps(samples, indent=1))
        self.figures.update(
            drift_samples=len(due),
            drift_corrected=len(latencies),
            drift_p50=None if not values else round(percentile(values, 50) or 0, 1),
            drift_p95=None if not values else round(percentile(values, 95) or 0, 1),
            drift_limit=round(interval + 10, 1),  # a sweep's interval, and 10 s for the correction itself
        )

    def run(self) -> None:
        self.start()
        print(f"  sandbox up; applying {len(self.manifests)} resources in batches of {self.args.batch}", flush=True)
        self.to_ready()
        print(f"  observing {self.args.minutes:g} min of steady state", flush=True)
        self.steady()
        interval = self.largest_interval or self.args.interval
        print(
            f"  changing publicNetworkAccess on {self.args.drift_samples} random workspaces within {interval:g}s "
            "(the largest effective interval seen)",
            flush=True,
        )
        self.drift()
        self.figures["rss_max_mib"] = round(max(self.process.rss, default=0), 1)


# ---------------------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------------------
def _number(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:g}{unit}" if isinstance(value, float) else f"{value}{unit}"


def stretches(by_subscription: dict[str, float] | None) -> str:
    """Each subscription's stretch when there are a few; else the stretched ones and a count of the rest."""
    if not by_subscription:
        return "-"
    shown = by_subscription
    if len(by_subscription) > 4:
        shown = {sub: factor for sub, factor in by_subscription.items() if factor != 1}
    listed = ", ".join(f"{sub[:8]}...{sub[-4:]} x{factor:g}" for sub, factor in shown.items())
    rest = len(by_subscription) - len(shown)
    others = f"x1 in {rest} others" if listed else f"x1 in all {rest}"
    return ", ".join(part for part in (listed, others if rest else "") if part)


def spans(by_span: dict[str, int] | None) -> str:
    """Where the unchecked resources' spans past the limit were, when there were any."""
    return f" ({', '.join(f'{n} {span}' for span, n in by_span.items())})" if by_span else ""


def counted(counts: dict[str, int]) -> str:
    """Counts by key, as "PUT Microsoft.Network/virtualNetworks x3, conditions x2"."""
    return ", ".join(f"{key} x{n}" for key, n in counts.items())


def changed(fields: dict[str, int] | None) -> str:
    """Which fields the status patches with a change changed, and in how many patches."""
    return f" ({counted(fields)})" if fields else ""


def report(args: argparse.Namespace, f: Json) -> None:
    def both(*keys: str, unit: str = "") -> str:
        shown = " / ".join(_number(f.get(key)) for key in keys)
        return shown + unit if any(f.get(key) is not None for key in keys) else shown

    rows = [
        ("time to all Ready", both("ready_seconds", unit=" s") + f" (applied in {_number(f.get('applied_seconds'))}s)"),
        ("ARM reads / writes to Ready", both("ready_reads", "ready_writes")),
        ("ARM 429s to Ready", both("ready_429s")),
        ("ARM reads / writes per minute, steady", both("reads_per_minute", "writes_per_minute")),
        ("ARM 429s per minute, steady", both("throttled_per_minute")),
        (
            "sweep interval p50 / p95 / p99",
            both("sweep_p50", "sweep_p95", "sweep_p99", unit=" s") + f" ({_number(f.get('sweep_gaps'))} intervals)",
        ),
        (
            "resources unchecked > effective interval + 10 %",
            f"{_number(f.get('unchecked_past_limit'))} of {args.count}" + spans(f.get("unchecked_by_span")),
        ),
        ("sweep start delay mean / p95 (at most)", both("sweep_delay_mean", "sweep_delay_p95", unit=" s")),
        ("sweep walk of Azure mean / p95 (at most)", both("sweep_walk_mean", "sweep_walk_p95", unit=" s")),
        (
            "effective drift interval p50 / max",
            both("effective_interval_p50", "effective_interval_max", unit=" s") + f" (declared {args.interval} s)",
        ),
        ("sweep stretch per subscription", stretches(f.get("stretch_by_subscription"))),
        (
            "drift corrected p50 / p95",
            both("drift_p50", "drift_p95", unit=" s")
            + f" ({_number(f.get('drift_corrected'))} of {_number(f.get('drift_samples'))} corrected)",
        ),
        ("drift corrected p95 / limit (effective interval + 10 s)", both("drift_p95", "drift_limit", unit=" s")),
        (
            "operator RSS idle / max / steady (median)",
            both("rss_idle_mib", "rss_max_mib", "rss_steady_mib", unit=" MiB"),
        ),
        ("operator CPU seconds per minute, steady", both("cpu_seconds_per_minute")),
        ("status patches per minute, steady", both("status_patches_per_minute")),
        (
            "of which heartbeat only / with a change",
            both("status_heartbeats_per_minute", "status_changes_per_minute") + changed(f.get("status_changed_fields")),
        ),
    ]
    print(
        f"\n{args.count} resources (examples {', '.join(e[:2] for e in args.examples)}) in {args.subscriptions} "
        f"subscription(s); drift interval {args.interval}s; {_number(f.get('steady_minutes'))} min steady state; "
        f"workers {args.workers or 'default (20)'}"
    )
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"  {label:{width}}  {value}")
    if f.get("steady_writes"):
        print("  steady-state writes: " + counted(f["steady_writes"]))
    print(json.dumps({"count": args.count, "subscriptions": args.subscriptions, "interval": args.interval, **f}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1000, help="how many SecureMLWorkspaces")
    parser.add_argument("--subscriptions", type=int, default=1, help="workload subscriptions they are spread over")
    parser.add_argument("--minutes", type=float, default=5, help="minutes of steady state to observe")
    parser.add_argument("--interval", type=int, default=60, help="drift interval in seconds (at least 10)")
    parser.add_argument("--drift-samples", type=int, default=20, help="workspaces drift is injected on")
    parser.add_argument("--examples", nargs="+", default=EXAMPLES, choices=EXAMPLES, metavar="FILE")
    parser.add_argument("--workers", type=int, default=None, help="SMLW_MAX_WORKERS (the operator's default: 20)")
    parser.add_argument("--batch", type=int, default=100, help="resources per kubectl apply")
    parser.add_argument("--poll", type=float, default=5, help="seconds between polls (custom resources, metrics)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds to all Ready (600 + 12 per resource)")
    parser.add_argument("--seed", type=int, default=None, help="random seed for the drift samples")
    args = parser.parse_args()
    if args.interval < 10 or args.count < 1 or args.subscriptions < 1:
        parser.error("--interval is at least 10; --count and --subscriptions at least 1")
    args.timeout = args.timeout or 600 + 12 * args.count
    args.seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    workdir = REPO / ".cache" / "bench-scale"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the sandbox on SIGTERM too
    print(f"bench-scale: {args.count} resources, seed {args.seed}; logs in {workdir}", flush=True)
    scale = Scale(args, Sandbox(workdir))
    status = 0
    try:
        scale.run()
    except (Exception, SystemExit) as failure:  # the figures so far still make a table
        print(f"\nstopped early: {type(failure).__name__}: {str(failure)[:2000]}")
        status = 1
    finally:
        scale.sandbox.stop()
    report(args, scale.figures)
    return status


if __name__ == "__main__":
    sys.exit(main())
