"""What an ops team gets in deploy/ holds together, checked without a Docker engine or a
Kubernetes cluster: the image's sources exist, the compose file and the manifests parse and
refer only to things that exist (services, settings, config keys, files), every service
container has probes and resources, worker replicas split the partitions without overlap, and
the NATS configurations are valid for the nats-server the image ships."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from shared.settings import Settings, parse_partitions
from tools.devservers import find_nats_server

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SERVICES = {"intake": 8001, "followup": 8002, "feedback": 8003}
SETTINGS = {name.upper() for name in Settings.model_fields}
ENTRY_COMMANDS = {"intake", "followup", "feedback", "nats-server", "probe", "ops", "dlq"}


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def manifests() -> list[tuple[str, dict[str, Any]]]:
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    out = []
    for name in kustomization["resources"]:
        for doc in yaml.safe_load_all((DEPLOY / "k8s" / name).read_text()):
            if doc:
                out.append((name, doc))
    return out


def workloads() -> list[tuple[str, dict[str, Any]]]:
    return [(f, d) for f, d in manifests()
            if d["kind"] in ("Deployment", "StatefulSet", "Job")]


def pod(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["template"]["spec"]


# -- the image -------------------------------------------------------------------------------


def test_the_image_copies_only_files_that_exist_and_starts_through_its_entrypoint() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    copies = [line.split()[1:] for line in dockerfile.splitlines()
              if line.startswith("COPY") and "--from" not in line]
    assert copies
    for args in copies:
        for source in args[:-1]:
            assert (ROOT / source).exists(), f"COPY {source}: no such file in the context"
    entry = ROOT / "deploy" / "docker" / "entrypoint.sh"
    assert os.access(entry, os.X_OK), "the entrypoint is executable"
    assert 'ENTRYPOINT ["sixstep-entrypoint"]' in dockerfile
    assert re.search(r"^FROM python:3\.1[1-9]", dockerfile, re.M), "the Python the code needs"
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored


def test_the_entrypoint_knows_each_service_and_the_cli() -> None:
    script = (DEPLOY / "docker" / "entrypoint.sh").read_text()
    for service in SERVICES:
        assert service in script
        assert (ROOT / "services" / service / "main.py").exists()
    assert 'exec sixstep "$@"' in script
    result = subprocess.run(["sh", "-n", str(DEPLOY / "docker" / "entrypoint.sh")],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


# -- compose ---------------------------------------------------------------------------------


def test_compose_has_a_three_node_nats_cluster_postgres_and_the_three_services() -> None:
    services = compose()["services"]
    for required in ("nats-1", "nats-2", "nats-3", "postgres", "ops-apply", *SERVICES):
        assert required in services, required
    env = services["intake"]["environment"]
    assert env["NATS_URL"] == "nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222"
    assert env["STREAM_REPLICAS"] == "3"
    assert "@postgres:5432/" in env["DATABASE_URL"]


def test_compose_refers_only_to_what_exists() -> None:
    doc = compose()
    services = doc["services"]
    for name, service in services.items():
        for dependency in service.get("depends_on") or {}:
            assert dependency in services, f"{name} depends on unknown {dependency}"
        for volume in service.get("volumes") or []:
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in doc["volumes"], f"{name} uses undeclared volume {source}"
        build = service.get("build")
        if build:
            context = (DEPLOY / build["context"]).resolve()
            assert (context / build["dockerfile"]).exists()
        if "sixstep" in str(service.get("image")) and "SERVER_NAME" not in (
                service.get("environment") or {}):
            command = service["command"]
            assert command[0] in ENTRY_COMMANDS, f"{name}: {command}"
            unknown = set(service["environment"]) - SETTINGS
            assert not unknown, f"{name} sets variables no setting reads: {unknown}"


def test_compose_services_have_health_checks_and_stop_gracefully() -> None:
    for name, service in compose()["services"].items():
        if name == "ops-apply":
            continue
        assert "healthcheck" in service, name
        if service["command"][0] in SERVICES:
            port = SERVICES[service["command"][0]]
            assert service["healthcheck"]["test"][-1] == str(port), name
            assert service["environment"][f"{service['command'][0].upper()}_PORT"] == str(port)
            assert service["stop_grace_period"] == "30s"


def _assert_partition_split(replicas: dict[str, str], partitions: int, where: str) -> None:
    owned: list[int] = []
    for spec in replicas.values():
        owned += parse_partitions(spec, partitions)
    assert sorted(owned) == list(range(partitions)), \
        f"{where}: worker partitions {replicas} must cover 0-{partitions - 1} exactly once"


def test_compose_worker_replicas_split_the_partitions_exactly() -> None:
    services = compose()["services"]
    for service in ("followup", "feedback"):
        workers = {n: s["environment"]["CONSUMER_PARTITIONS"] for n, s in services.items()
                   if s.get("command") == [service] and s["environment"].get("ROLES") == "workers"}
        assert len(workers) == 2
        _assert_partition_split(workers, int(services[service]["environment"]["PARTITIONS"]),
                                f"compose {service}")


def test_follow_up_fans_policies_out_in_a_process_of_its_own_in_compose_and_k8s() -> None:
    composed = {n: s["environment"].get("ROLES") for n, s in compose()["services"].items()
                if s.get("command") == ["followup"]}
    assert sorted(composed.values()) == ["api", "fanout", "workers", "workers"], composed
    pods = [{v["name"]: v.get("value") for v in pod(doc)["containers"][0]["env"]}["ROLES"]
            for _, doc in workloads()
            if doc["spec"]["template"]["metadata"]["labels"].get("app") == "followup"]
    assert sorted(pods) == ["api", "fanout", "workers", "workers"], pods


#: The users' passwords the NATS nodes read (deploy/nats/nats.conf's authorization block).
NATS_PASSWORDS = {f"NATS_{user}_PASSWORD": "p" * 40
                  for user in ("INTAKE", "FOLLOWUP", "FEEDBACK", "OPS")}


def _nats_config_is_valid(path: Path, **env: str) -> None:
    result = subprocess.run([str(find_nats_server()), "-t", "-c", str(path)],
                            capture_output=True, text=True,
                            env={**os.environ, **NATS_PASSWORDS, **env},
                            check=False, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_nats_configurations_are_valid_for_the_shipped_nats_server(
        tmp_path: Path) -> None:
    _nats_config_is_valid(DEPLOY / "nats" / "nats.conf", SERVER_NAME="nats-1")
    routes = re.findall(r"nats-route://([\w-]+):6222", (DEPLOY / "nats" / "nats.conf").read_text())
    assert routes == ["nats-1", "nats-2", "nats-3"]
    config = next(d for _, d in manifests() if d["kind"] == "ConfigMap"
                  and d["metadata"]["name"] == "nats-config")
    k8s_conf = tmp_path / "nats.conf"
    k8s_conf.write_text(config["data"]["nats.conf"])
    _nats_config_is_valid(k8s_conf, POD_NAME="nats-0")


# -- kubernetes ------------------------------------------------------------------------------


def test_every_manifest_is_a_kubernetes_object() -> None:
    docs = manifests()
    assert docs
    names: set[tuple[str, str]] = set()
    for file, doc in docs:
        assert doc.get("apiVersion") and doc.get("kind"), file
        name = doc.get("metadata", {}).get("name")
        assert name and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name), (file, name)
        assert (doc["kind"], name) not in names, f"{doc['kind']} {name} twice"
        names.add((doc["kind"], name))
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in (DEPLOY / "k8s").glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk, "kustomization.yaml lists every manifest"


def test_workloads_select_their_own_pods_and_have_probes_and_resources() -> None:
    for file, doc in workloads():
        spec = doc["spec"]
        if doc["kind"] != "Job":
            selector = spec["selector"]["matchLabels"]
            labels = spec["template"]["metadata"]["labels"]
            assert selector.items() <= labels.items(), f"{file}: selector misses its pods"
        for container in pod(doc)["containers"]:
            where = f"{file} {doc['metadata']['name']}/{container['name']}"
            assert container.get("image"), where
            resources = container.get("resources", {})
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(kind, {})), f"{where}: {kind}"
            if doc["kind"] == "Job":
                continue
            assert container.get("livenessProbe") and container.get("readinessProbe"), where
            args = container.get("args", [])
            if args and args[0] in SERVICES:
                ports = {p["name"]: p["containerPort"] for p in container["ports"]}
                assert ports["http"] == SERVICES[args[0]], where
                assert container["livenessProbe"]["httpGet"]["path"] == "/health", where
                assert container["readinessProbe"]["httpGet"]["path"] == "/ready", where
                assert container["startupProbe"]["httpGet"]["path"] == "/health", where


def test_services_and_budgets_select_existing_pods() -> None:
    pods = [d["spec"]["template"]["metadata"]["labels"] for _, d in workloads()]
    for file, doc in manifests():
        if doc["kind"] == "Service":
            selector = doc["spec"]["selector"]
        elif doc["kind"] == "PodDisruptionBudget":
            selector = doc["spec"]["selector"]["matchLabels"]
        else:
            continue
        assert any(selector.items() <= labels.items() for labels in pods), \
            f"{file}: {doc['kind']} {doc['metadata']['name']} selects no pod"
    deployments = {d["metadata"]["name"] for _, d in manifests() if d["kind"] == "Deployment"}
    for file, doc in manifests():
        if doc["kind"] == "HorizontalPodAutoscaler":
            assert doc["spec"]["scaleTargetRef"]["name"] in deployments, file


def test_environment_comes_from_settings_and_config_that_exist() -> None:
    """Every variable is a setting, every reference resolves, and the shipped config builds
    production settings once the placeholders are replaced (and refuses them before)."""
    docs = manifests()
    config_maps = {d["metadata"]["name"]: d["data"] for _, d in docs if d["kind"] == "ConfigMap"}
    secrets = {d["metadata"]["name"]: d["stringData"] for _, d in docs if d["kind"] == "Secret"}
    referenced_secret_keys = set()
    for file, doc in workloads():
        for container in pod(doc)["containers"]:
            sixstep = container["image"] == "sixstep"
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in config_maps, file
                if "secretRef" in source:
                    assert source["secretRef"]["name"] in secrets, file
            for var in container.get("env", []):
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in secrets[ref["name"]], file
                    referenced_secret_keys.add(ref["key"])
                if sixstep and args_of(container)[0] != "nats-server":
                    assert var["name"] in SETTINGS, f"{file}: {var['name']} is not a setting"
    assert set(config_maps["sixstep-config"]) <= SETTINGS
    assert set(secrets["sixstep-secrets"]) <= SETTINGS | referenced_secret_keys
    shipped = {**config_maps["sixstep-config"], **secrets["sixstep-secrets"]}
    with pytest.raises(ValidationError, match="32"):  # the placeholder secrets cannot go live
        settings_from(shipped)
    # Each service's own NATS user, as its workloads' env gives it (the nats-server's
    # passwords are no setting: the workloads pass one as NATS_PASSWORD).
    for file, doc in workloads():
        for container in pod(doc)["containers"]:
            if container["image"] == "sixstep" and args_of(container)[0] != "nats-server":
                env = {var["name"]: var for var in container.get("env", [])}
                user = env["NATS_USER"]["value"]
                key = env["NATS_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"]
                assert key == f"NATS_{user.upper()}_PASSWORD", file
    nats_passwords = {k for k in shipped if k.startswith("NATS_") and k.endswith("_PASSWORD")}
    assert nats_passwords == set(NATS_PASSWORDS)
    shipped = {k: v for k, v in shipped.items() if k not in nats_passwords}
    shipped |= {"NATS_USER": "intake", "NATS_PASSWORD": "CHANGE-ME"}
    filled = {k: own_value(k, v) for k, v in shipped.items()}
    assert settings_from(filled).environment == "production"
    # Each placeholder left in alone is refused, naming it: some are 32 characters long, as
    # long as a real key must be (OPS_TOKEN's would have opened dead-letter replay and
    # SURVEY_TOKEN_SECRET's would have let anyone sign survey links).
    for name, placeholder in shipped.items():
        if "CHANGE-ME" not in placeholder or name == "POSTGRES_PASSWORD":
            continue
        with pytest.raises(ValidationError, match=name):
            settings_from({**filled, name: placeholder})


def own_value(name: str, shipped: str) -> str:
    """What an operator puts where the manifests ship a CHANGE-ME placeholder."""
    if "CHANGE-ME" not in shipped:
        return shipped
    if name == "AUTH_KEYS":
        return f'["{"k" * 40}"]'
    if name == "DATABASE_URL":
        return shipped.replace("CHANGE-ME", "p" * 24)
    return "s" * 40


def settings_from(env: dict[str, str]) -> Settings:
    """Settings as a container with exactly this environment would build them."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        return Settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def args_of(container: dict[str, Any]) -> list[str]:
    return container.get("args") or shlex.split(container.get("command", [""])[0])


def test_the_nats_cluster_and_the_stream_have_three_replicas() -> None:
    docs = manifests()
    nats = next(d for _, d in docs if d["kind"] == "StatefulSet"
                and d["metadata"]["name"] == "nats")
    assert nats["spec"]["replicas"] == 3
    config = next(d for _, d in docs if d["kind"] == "ConfigMap"
                  and d["metadata"]["name"] == "sixstep-config")["data"]
    assert config["STREAM_REPLICAS"] == "3"
    assert config["NATS_URL"].count("nats://") == 3


@pytest.mark.parametrize("service", ["followup", "feedback"])
def test_kubernetes_worker_replicas_split_the_partitions_exactly(service: str) -> None:
    workers = {}
    for _, doc in workloads():
        labels = doc["spec"]["template"]["metadata"]["labels"]
        if labels.get("app") == service and labels.get("role") == "workers":
            container = pod(doc)["containers"][0]
            env = {v["name"]: v.get("value") for v in container["env"]}
            assert env["ROLES"] == "workers"
            assert doc["spec"]["strategy"]["type"] == "Recreate"
            workers[doc["metadata"]["name"]] = env["CONSUMER_PARTITIONS"]
    assert len(workers) == 2
    config = next(d for _, d in manifests() if d["kind"] == "ConfigMap"
                  and d["metadata"]["name"] == "sixstep-config")["data"]
    _assert_partition_split(workers, int(config["PARTITIONS"]), f"k8s {service}")


def test_only_the_services_and_the_ops_job_reach_nats_and_postgres() -> None:
    """deploy/k8s/network-policy.yaml: no cluster here, so what can be checked without one:
    the policies are there, select the NATS and PostgreSQL pods, and admit exactly the pods of
    the workloads that connect to them (every one of which exists)."""
    policies = {d["metadata"]["name"]: d for _, d in manifests() if d["kind"] == "NetworkPolicy"}
    assert set(policies) == {"nats", "postgres"}
    pods = {d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"]
            for _, d in workloads()}
    clients = {labels["app"] for name, labels in pods.items()
               if labels["app"] not in ("nats", "postgres")}
    assert clients == {"intake", "followup", "feedback", "sixstep-ops"}
    for server, port in (("nats", 4222), ("postgres", 5432)):
        spec = policies[server]["spec"]
        assert spec["podSelector"]["matchLabels"] == {"app": server}
        assert spec["policyTypes"] == ["Ingress"]
        admitted: set[str] = set()
        for rule in spec["ingress"]:
            by_rule: set[str] = set()
            for peer in rule["from"]:
                assert set(peer) == {"podSelector"}, "pods of this namespace only"
                selector = peer["podSelector"]
                by_rule |= set(selector.get("matchLabels", {}).values())
                for expression in selector.get("matchExpressions", []):
                    assert (expression["key"], expression["operator"]) == ("app", "In")
                    by_rule |= set(expression["values"])
            if by_rule & clients:
                assert {p["port"] for p in rule["ports"]} == {port}
            admitted |= by_rule
        assert admitted - {server} == clients, server
    cluster = next(r for r in policies["nats"]["spec"]["ingress"]
                   if r["from"] == [{"podSelector": {"matchLabels": {"app": "nats"}}}])
    assert {p["port"] for p in cluster["ports"]} == {4222, 6222}
