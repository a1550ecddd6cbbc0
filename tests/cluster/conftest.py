"""The cluster tier: three RabbitMQ nodes of the tier's own (scripts/cluster.sh), beside the machine's default
node and never touching it. Not collected by a plain ``pytest`` (``norecursedirs`` in pyproject.toml), and
skipped unless ``GATEWAY_TEST_CLUSTER=1``: it needs root, network namespaces and a few minutes. scripts/test.sh
runs it on CI (CI=true) after the main suite.

The session starts the cluster and stops it afterwards, unless one was already running
(``scripts/cluster.sh start`` by hand), which it then leaves running. Each test gets a vhost of its own."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.conftest import ROOT

SCRIPT = ROOT / "scripts" / "cluster.sh"
ENABLED = os.environ.get("GATEWAY_TEST_CLUSTER") == "1"
NODES = (1, 2, 3)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/cluster/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.cluster)
            if not ENABLED:
                item.add_marker(pytest.mark.skip(reason="the cluster tier runs only with GATEWAY_TEST_CLUSTER=1 "
                                                        "(scripts/test.sh sets it on CI)"))


def _sh(*args: str, timeout: float = 180) -> str:
    done = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(f"scripts/cluster.sh {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


@dataclass
class Cluster:
    """Handles on the three nodes: their AMQP URLs and the faults the tests inflict."""

    def url(self, node: int, vhost: str) -> str:
        return _sh("urls", vhost).strip().split(";")[node - 1]

    def urls(self, vhost: str, first: int = 1) -> str:
        """All three URLs, starting with node ``first`` (each replica is given its own order)."""
        order = [first] + [n for n in NODES if n != first]
        return ";".join(self.url(n, vhost) for n in order)

    def ctl(self, node: int, *args: str) -> str:
        return _sh("ctl", str(node), *args)

    def leader(self, vhost: str, queue: str = "gateway.kartlegging") -> int:
        """The node whose Raft member leads ``queue`` (asked of a node that is up)."""
        for node in NODES:
            try:
                rows = json.loads(self.ctl(node, "list_queues", "-p", vhost, "name", "leader", "--formatter",
                                           "json") or "[]")
            except AssertionError:
                continue
            for row in rows:
                if row["name"] == queue:
                    return int(str(row["leader"]).split("@")[0].removeprefix("gwc"))
        raise AssertionError(f"no node reports a leader for {queue}")

    def kill(self, node: int) -> None:
        """SIGKILL of the node's Erlang VM (beam.smp, its pid from the node's pid file)."""
        _sh("kill", str(node))

    def start_node(self, node: int) -> None:
        _sh("start-node", str(node))

    def stop_app(self, node: int) -> None:
        _sh("stop-app", str(node))

    def start_app(self, node: int) -> None:
        _sh("start-app", str(node))

    def partition(self) -> None:
        _sh("partition", "3")

    def heal(self) -> None:
        _sh("heal", "3")

    def running_nodes(self, ask: int = 1) -> int:
        status = json.loads(self.ctl(ask, "cluster_status", "--formatter", "json"))
        return len(status.get("running_nodes", []))

    def await_all(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if all(self.running_nodes(n) == 3 for n in NODES):
                    return
            except (AssertionError, ValueError):
                pass
            time.sleep(1)
        raise AssertionError("the cluster did not come back to three running nodes")


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    if os.geteuid() != 0:
        pytest.fail("the cluster tier needs root (network namespaces); run it on CI or as root")
    running = subprocess.run(["bash", str(SCRIPT), "status"], capture_output=True, timeout=60).returncode == 0
    if not running:
        _sh("start", timeout=300)
    try:
        yield Cluster()
    finally:
        if not running:
            _sh("stop", timeout=120)


@pytest.fixture
def vhost(cluster: Cluster) -> Iterator[str]:
    name = f"gwt-{uuid.uuid4().hex[:10]}"
    cluster.ctl(1, "add_vhost", name)
    cluster.ctl(1, "set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    yield name
    cluster.await_all()
    if os.environ.get("GATEWAY_TEST_CLUSTER_KEEP") != "1":  # keep it to look into a failure
        cluster.ctl(1, "delete_vhost", name)
