"""The deployment configs in cluster/deploy/ and the Dockerfile, checked offline.

The AWS cluster-launcher YAML goes through Ray's own ``prepare_config`` + ``validate_config``
(what ``ray up`` runs before it calls AWS); the RayCluster goes through the function the KubeRay
autoscaler uses to read a RayCluster (which ends in ``validate_config`` too). No KubeRay CRD
schema nor ``kubernetes`` package is available offline, so the other manifest checks are
structural; ``kubectl kustomize`` renders the kustomization when kubectl is installed. Docker
cannot build here: the Dockerfile is checked line by line. Last, every file is searched for the
settings that expose Ray or MLflow publicly (ShadowRay, CVE-2023-48022) or turn auth off.
"""

from __future__ import annotations

import copy
import re
import shlex
import shutil
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
import pytest
import yaml
from ray.autoscaler._private.kuberay.autoscaling_config import (
    _derive_autoscaling_config_from_ray_cr,
)
from ray.autoscaler._private.util import prepare_config, validate_config

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "cluster" / "deploy"
AWS_CONFIG = DEPLOY / "aws-gpu.yaml"
K8S = DEPLOY / "k8s"
DOCKERFILE = ROOT / "Dockerfile"
PAPER_SPEC = "sweeps/specs/paper_feature_noise.yaml"
RAY_AND_MLFLOW_PORTS = {8265, 10001, 6379, 5000}
OPERATOR_NAMESPACE = "kuberay-system"
NAMESPACE = "mixup-sweeps"
API_VERSIONS = {
    "Namespace": "v1", "PersistentVolumeClaim": "v1", "Service": "v1",
    "NetworkPolicy": "networking.k8s.io/v1", "RayCluster": "ray.io/v1", "RayJob": "ray.io/v1",
    "Kustomization": "kustomize.config.k8s.io/v1beta1",
}


# ------------------------------------------------------------------------------------ helpers

def aws_config() -> dict[str, Any]:
    return yaml.safe_load(AWS_CONFIG.read_text())


def prepared_aws_config() -> dict[str, Any]:
    return prepare_config(copy.deepcopy(aws_config()))


def k8s_documents() -> list[dict[str, Any]]:
    return [doc for path in sorted(K8S.glob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def only(kind: str) -> dict[str, Any]:
    found = [doc for doc in k8s_documents() if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def ray_pod_templates() -> dict[str, dict[str, Any]]:
    spec = only("RayCluster")["spec"]
    templates = {"head": spec["headGroupSpec"]["template"]}
    templates.update({group["groupName"]: group["template"] for group in spec["workerGroupSpecs"]})
    return templates


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item.get("value", "") for item in container.get("env", [])}


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        logical.append(current.strip())
        current = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in logical]


def without_comments(path: Path) -> str:
    """What a file configures: YAML/Dockerfile minus comments; Markdown: its code blocks."""
    text = path.read_text()
    if path.suffix == ".md":
        text = "\n".join(re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S))
    if path.name == "Dockerfile":
        return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    return "\n".join(re.sub(r"(^|\s)#.*$", "", line) for line in text.splitlines())


# --------------------------------------------------------------------- cloud cluster launcher

def test_cloud_cluster_config_passes_rays_own_validation() -> None:
    validate_config(prepared_aws_config())


def test_rays_validator_rejects_a_misspelt_key_so_the_check_above_has_teeth() -> None:
    config = prepared_aws_config()
    config["max_worker"] = 4
    with pytest.raises(jsonschema.ValidationError):
        validate_config(config)


def test_cloud_cluster_has_a_cpu_head_and_autoscaled_single_gpu_workers() -> None:
    config = prepared_aws_config()
    types = config["available_node_types"]
    head = types[config["head_node_type"]]
    assert head["resources"] == {"CPU": 0}, "trials must not land on the head"
    workers = {name: t for name, t in types.items() if name != config["head_node_type"]}
    assert [t["resources"].get("GPU") for t in workers.values()] == [1]
    (worker,) = workers.values()
    assert worker["node_config"]["InstanceType"].startswith(("g5.", "g6.", "g4dn.", "p"))
    assert 0 <= worker["min_workers"] <= worker["max_workers"] <= config["max_workers"]
    assert worker["max_workers"] >= 1


def test_cloud_security_group_adds_no_rule_open_to_the_internet() -> None:
    config = aws_config()
    rules = config["provider"]["security_group"]["IpPermissions"]
    for rule in rules:
        public = ([r.get("CidrIp") for r in rule.get("IpRanges", [])]
                  + [r.get("CidrIpv6") for r in rule.get("Ipv6Ranges", [])])
        assert not {"0.0.0.0/0", "::/0"} & set(public), f"public inbound rule: {rule}"
    for node_type in config["available_node_types"].values():
        # With our own group ids Ray would not manage the rules, and this test would prove nothing.
        assert "SecurityGroupIds" not in node_type["node_config"]


def test_cloud_head_serves_the_dashboard_and_mlflow_on_loopback_only() -> None:
    config = prepared_aws_config()
    head_commands = config["head_start_ray_commands"]
    (ray_start,) = [c for c in head_commands if "ray start --head" in c]
    assert "--dashboard-host=127.0.0.1" in ray_start
    (mlflow,) = [c for c in head_commands if "mlflow server" in c]
    assert re.search(r"--host 127\.0\.0\.1 --port 5000\b", mlflow)
    every_command = [c for key, value in config.items() if key.endswith("_commands")
                     for c in value]
    assert every_command and not [c for c in every_command if "0.0.0.0" in c], (
        "a command binds to every interface (did one of Ray's defaults slip in?)")


def test_every_cloud_node_runs_ray_in_token_mode_with_the_shipped_token_file() -> None:
    config = prepared_aws_config()
    options = " ".join(config["docker"]["run_options"])
    assert "--env RAY_AUTH_MODE=token" in options
    token_path = re.search(r"--env RAY_AUTH_TOKEN_PATH=(\S+)", options)
    assert token_path, "RAY_AUTH_TOKEN_PATH is not set on the nodes"
    # file_mounts reach the head (ray up) and every worker (the head's autoscaler).
    shipped = [PurePosixPath(remote) for remote in config["file_mounts"]]
    assert PurePosixPath(token_path.group(1)).parent in shipped
    assert any("$RAY_HEAD_IP:6379" in c for c in config["worker_start_ray_commands"])


def test_cloud_nodes_share_sweep_storage_and_run_the_image_kubernetes_runs() -> None:
    config = aws_config()
    assert "--volume /mnt/sweeps:/mnt/sweeps" in config["docker"]["run_options"]
    images = {c["image"] for t in ray_pod_templates().values() for c in t["spec"]["containers"]}
    assert images == {config["docker"]["image"]}


# ----------------------------------------------------------------------------------- KubeRay

def test_every_kubernetes_manifest_has_a_known_kind_api_version_and_name() -> None:
    documents = k8s_documents()
    assert {doc["kind"] for doc in documents} == set(API_VERSIONS)
    for doc in documents:
        assert doc["apiVersion"] == API_VERSIONS[doc["kind"]], doc["kind"]
        if doc["kind"] == "Kustomization":
            continue
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", doc["metadata"]["name"])
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == NAMESPACE, doc["metadata"]["name"]


def test_kustomization_applies_every_manifest_but_the_job_and_makes_the_token_secret() -> None:
    kustomization = only("Kustomization")
    manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    jobs = {p.name for p in K8S.glob("*.yaml") if "kind: RayJob" in p.read_text()}
    assert set(kustomization["resources"]) == manifests - jobs
    (generator,) = kustomization["secretGenerator"]
    assert generator["name"] == only("RayCluster")["spec"]["authOptions"]["secretName"]
    assert kustomization["generatorOptions"]["disableNameSuffixHash"] is True
    (source,) = generator["files"]
    key, token_file = source.split("=")
    assert key == "auth_token"  # the key KubeRay's authOptions reads
    assert token_file in (K8S / ".gitignore").read_text().split()
    assert f"cluster/deploy/k8s/{token_file}" in (ROOT / ".dockerignore").read_text().split()


def test_ray_cluster_has_a_head_group_and_an_autoscaled_gpu_worker_group() -> None:
    spec = only("RayCluster")["spec"]
    assert spec["enableInTreeAutoscaling"] is True
    head = spec["headGroupSpec"]
    assert all(isinstance(v, str) for v in head["rayStartParams"].values())
    (group,) = spec["workerGroupSpecs"]
    for field in ("replicas", "minReplicas", "maxReplicas"):
        assert isinstance(group[field], int), field
    assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
    assert group["maxReplicas"] >= 1
    for template in ray_pod_templates().values():
        for container in template["spec"]["containers"]:
            assert container["name"] and container["image"]
            assert container["resources"]["requests"] and container["resources"]["limits"]
    worker = group["template"]["spec"]["containers"][0]["resources"]
    assert int(worker["limits"]["nvidia.com/gpu"]) >= 1
    assert worker["requests"]["nvidia.com/gpu"] == worker["limits"]["nvidia.com/gpu"]
    assert "nvidia.com/gpu" not in head["template"]["spec"]["containers"][0]["resources"]["limits"]


def test_kuberay_autoscaler_reads_the_ray_cluster_as_a_cpu_head_and_gpu_workers() -> None:
    config = _derive_autoscaling_config_from_ray_cr(only("RayCluster"))  # validate_config inside
    types = config["available_node_types"]
    assert types["headgroup"]["resources"]["CPU"] == 0
    assert types["gpu"]["resources"]["GPU"] == 1
    assert types["gpu"]["resources"]["CPU"] == 4
    assert (types["gpu"]["min_workers"], types["gpu"]["max_workers"]) == (0, 4)


def test_every_ray_container_runs_in_token_mode_with_the_secret_mounted() -> None:
    spec = only("RayCluster")["spec"]
    assert spec["authOptions"]["mode"] == "token"
    secret_name = spec["authOptions"]["secretName"]
    for group, template in ray_pod_templates().items():
        ray = template["spec"]["containers"][0]  # KubeRay: the Ray container comes first
        env = env_of(ray)
        assert env.get("RAY_AUTH_MODE") == "token", group
        token = PurePosixPath(env["RAY_AUTH_TOKEN_PATH"])
        assert token.name == "auth_token", group
        (mount,) = [m for m in ray["volumeMounts"] if PurePosixPath(m["mountPath"]) == token.parent]
        assert mount.get("readOnly") is True, group
        volumes = {v["name"]: v for v in template["spec"]["volumes"]}
        assert volumes[mount["name"]]["secret"]["secretName"] == secret_name, group
    for doc in k8s_documents():
        for mode in re.findall(r"name: RAY_AUTH_MODE\s+value: (\S+)", yaml.safe_dump(doc)):
            assert mode == "token"


def test_ray_job_runs_the_paper_sweep_on_the_cluster_with_shared_storage() -> None:
    from mixup_cli.main import _parser

    cluster, job = only("RayCluster"), only("RayJob")
    assert job["spec"]["clusterSelector"] == {"ray.io/cluster": cluster["metadata"]["name"]}
    assert job["metadata"]["namespace"] == cluster["metadata"]["namespace"]
    assert job["spec"]["submissionMode"] == "HTTPMode"  # no submitter pod to let through
    entrypoint = job["spec"]["entrypoint"]
    assert not re.search(r"[;&|$`]", entrypoint), "one plain command, the same in every mode"
    args = _parser().parse_args(shlex.split(entrypoint)[1:])
    assert shlex.split(entrypoint)[0] == "mixup-sweep" and args.command == "run"
    workdir = [a for i, a in dockerfile_instructions() if i == "WORKDIR"][-1]
    assert args.spec == f"{workdir}/{PAPER_SPEC}" and (ROOT / PAPER_SPEC).is_file()
    assert args.address == "auto"  # Ray sets RAY_ADDRESS for a job's entrypoint; auto reads it
    assert args.tracking_uri == "http://127.0.0.1:5000"
    for group, template in ray_pod_templates().items():
        volumes = {v["name"]: v for v in template["spec"]["volumes"]}
        (mount,) = [m for m in template["spec"]["containers"][0]["volumeMounts"]
                    if m["mountPath"] == args.storage]
        claim = volumes[mount["name"]]["persistentVolumeClaim"]["claimName"]
        assert claim == only("PersistentVolumeClaim")["metadata"]["name"], group
    assert only("PersistentVolumeClaim")["spec"]["accessModes"] == ["ReadWriteMany"]


def test_mlflow_runs_beside_the_driver_on_loopback_behind_a_cluster_ip_service() -> None:
    head = ray_pod_templates()["head"]["spec"]
    (mlflow,) = [c for c in head["containers"] if c["name"] == "mlflow"]
    command = " ".join(mlflow.get("command", []) + mlflow.get("args", []))
    assert re.search(r"--host 127\.0\.0\.1 --port 5000 --workers 1\b", command)
    assert "sqlite:////mnt/sweeps/" in command
    service = only("Service")
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"] == {"ray.io/cluster": only("RayCluster")["metadata"]["name"],
                                           "ray.io/node-type": "head"}
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] in {p["name"] for p in mlflow["ports"]}


def test_nothing_in_kubernetes_is_reachable_from_outside_the_cluster() -> None:
    documents = k8s_documents()
    assert not {"Ingress", "Route", "Gateway", "HTTPRoute"} & {doc["kind"] for doc in documents}
    for doc in documents:
        if doc["kind"] == "Service":
            assert doc["spec"]["type"] == "ClusterIP", doc["metadata"]["name"]
    head = only("RayCluster")["spec"]["headGroupSpec"]
    assert head["serviceType"] == "ClusterIP"
    assert head.get("enableIngress") is False
    assert head["rayStartParams"].get("dashboard-host") not in {"0.0.0.0", "::", "[::]"}
    for group, template in ray_pod_templates().items():
        pod = template["spec"]
        assert not (pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC")), group
        for container in pod["containers"]:
            assert all("hostPort" not in p for p in container.get("ports", [])), group


def test_network_policy_admits_only_cluster_pods_and_the_operator_on_the_dashboard() -> None:
    policy = only("NetworkPolicy")["spec"]
    selected = policy["podSelector"]["matchLabels"]
    for group, template in ray_pod_templates().items():
        assert selected.items() <= template["metadata"]["labels"].items(), group
    assert policy["policyTypes"] == ["Ingress"]
    peers, operator = policy["ingress"]
    assert "ports" not in peers and peers["from"] == [{"podSelector": {"matchLabels": selected}}]
    assert operator["from"] == [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": OPERATOR_NAMESPACE}}}]
    assert operator["ports"] == [{"protocol": "TCP", "port": 8265}]


def test_every_pod_runs_as_a_non_root_user_without_privilege_escalation() -> None:
    for group, template in ray_pod_templates().items():
        context = template["spec"]["securityContext"]
        assert context["runAsNonRoot"] is True and context["runAsUser"] != 0, group
        for container in template["spec"]["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, group


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_kustomize_renders_the_cluster_with_its_token_secret(tmp_path: Path) -> None:
    folder = tmp_path / "k8s"
    shutil.copytree(K8S, folder, ignore=shutil.ignore_patterns("ray-auth-token"))
    (folder / "ray-auth-token").write_text("test-token")
    rendered = subprocess.run(["kubectl", "kustomize", str(folder)], capture_output=True,
                              text=True, timeout=60, check=True).stdout
    documents = list(yaml.safe_load_all(rendered))
    kinds = {doc["kind"] for doc in documents}
    assert kinds == {"Namespace", "Secret", "PersistentVolumeClaim", "RayCluster", "Service",
                     "NetworkPolicy"}
    (secret,) = [doc for doc in documents if doc["kind"] == "Secret"]
    assert secret["metadata"] == {"name": "mixup-ray-auth", "namespace": NAMESPACE,
                                  "labels": {"app.kubernetes.io/part-of": "mixup-sweeps"}}
    assert set(secret["data"]) == {"auth_token"}


# ------------------------------------------------------------------------------------- image

def test_image_builds_on_a_cuda_base_and_installs_the_project_as_a_non_root_user() -> None:
    instructions = dockerfile_instructions()
    assert next(i for i, _ in instructions if i != "ARG") == "FROM"
    (base,) = [args for i, args in instructions if i == "FROM"]
    assert base.startswith("rayproject/ray:") and base.endswith("-gpu")
    users = [args.split(":")[0] for i, args in instructions if i == "USER"]
    assert users and users[-1] not in {"root", "0"}
    runs = [args for i, args in instructions if i == "RUN"]
    assert any(re.search(r"pip install (--[-\w]+ )*\.(\s|$)", run) for run in runs)


def test_image_exposes_no_port_and_binds_nothing_to_every_interface() -> None:
    instructions = dockerfile_instructions()
    exposed = {int(p.split("/")[0]) for i, args in instructions if i == "EXPOSE"
               for p in args.split()}
    assert not exposed & RAY_AND_MLFLOW_PORTS
    assert "0.0.0.0" not in without_comments(DOCKERFILE)


def test_docker_build_context_leaves_out_tokens_environments_and_results() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".mixup-cluster", "**/auth_token", ".venv", ".git", "sweep_results", "mlflow.db",
            "mlruns"} <= ignored


# ------------------------------------------------------------------------ the whole folder

FORBIDDEN = {
    "dashboard on every interface": r"dashboard[-_]host[\"'\s]*[=:]\s*[\"']?0\.0\.0\.0",
    "server on every interface": r"--host[=\s]+0\.0\.0\.0",
    "Ray/MLflow port on every interface": r"0\.0\.0\.0:(?:8265|10001|6379|5000)\b",
    "inbound rule open to the internet": r"0\.0\.0\.0/0|::/0",
    "port published on every interface": r"(?:\s-p|--publish)[=\s]+(?:0\.0\.0\.0:)?"
                                         r"(?:8265|10001|6379|5000):",
    "LoadBalancer service": r"\bLoadBalancer\b",
    "NodePort service": r"\bNodePort\b",
    "host networking": r"hostNetwork:\s*true",
    "host port": r"\bhostPort\b",
    "Ingress": r"kind:\s*Ingress\b",
    "port-forward on every interface": r"port-forward.*--address",
    "token auth off": r"RAY_AUTH_MODE[\"']?\s*[=:]\s*[\"']?disabled"
                      r"|name:\s*RAY_AUTH_MODE\s+value:\s*[\"']?disabled",
}
DEPLOY_FILES = sorted(p for p in DEPLOY.rglob("*") if p.is_file() and p.name != "ray-auth-token")


@pytest.mark.parametrize("path", [*DEPLOY_FILES, DOCKERFILE, ROOT / ".dockerignore"],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_no_deploy_file_exposes_ray_or_mlflow_publicly_or_turns_auth_off(path: Path) -> None:
    text = without_comments(path)
    found = {what: match.group(0) for what, pattern in FORBIDDEN.items()
             if (match := re.search(pattern, text))}
    assert not found, f"{path.relative_to(ROOT)}: {found}"


def test_run_on_a_cluster_guide_gives_the_commands_for_every_stage() -> None:
    guide = without_comments(DEPLOY / "README.md")
    for command in ("mixup-sweep cluster up --workers 2", "mixup-sweep cluster down",
                    "--tracking-uri http://127.0.0.1:MLFLOW_PORT",
                    "ray up -y cluster/deploy/aws-gpu.yaml",
                    "ray attach cluster/deploy/aws-gpu.yaml -p 8265 -p 5000",
                    "-L 8265:127.0.0.1:8265 -L 5000:127.0.0.1:5000", "--address auto",
                    "kubectl apply -k cluster/deploy/k8s",
                    "kubectl create -f cluster/deploy/k8s/rayjob-paper-feature-noise.yaml",
                    "port-forward svc/mixup-sweeps-head-svc 8265:8265",
                    "port-forward svc/mixup-mlflow 5000:5000"):
        assert command in guide, command
    for path in re.findall(r"cluster/deploy/[\w./-]+\.yaml", guide):
        assert (ROOT / path).is_file(), path
