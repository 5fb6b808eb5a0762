# SPDX-License-Identifier: Apache-2.0
"""The ortserve image, run by podman (runc) as a cluster would run it
(issue #19, parts 1 to 3). Needs `make image` first (`make test-deploy` does it).
  - ImageTest: non-root, read-only root filesystem, no capabilities, models
    mounted at the path a flag names; ready; an SAE request and a KServe v2
    infer; --version and ortserve_build_info carry the image's git commit;
    SIGTERM: readiness off at once, requests in flight answered, exit 0.
  - KServeRuntimeTest: the container of deploy/kserve's ClusterServingRuntime
    (its args and env, as KServe would start it) over a Triton-layout
    repository at /mnt/models: v2 REST on 8080, gRPC on 8081, metrics on 8002.
  - KubePlayTest: `podman kube play` of the Deployment and ConfigMap that
    deploy/kubernetes/overlays/small renders, with the demo models in the
    PersistentVolumeClaim's volume: the pod gets ready and answers.

Run: /usr/bin/python3 container_test.py --cli build/tools/cli/ortserve-cli --source-dir . \
        [--image localhost/ortserve:latest]
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploytest  # noqa: E402
from deploytest import podman  # noqa: E402

ARGS = None
TIMES = {}


def make_repository(tmp):
    """The demo models plus `held` (an identity model whose batcher holds
    requests for 3 s), readable by the image's non-root user."""
    repo = os.path.join(tmp, "models")
    shutil.copytree(os.path.join(ARGS.source_dir, "models"), repo)
    subprocess.run(["/usr/bin/python3", "-c", f"""
import os, onnx
from onnx import helper, TensorProto
x = helper.make_tensor_value_info('x', TensorProto.FLOAT, [None, 4])
y = helper.make_tensor_value_info('y', TensorProto.FLOAT, [None, 4])
m = helper.make_model(helper.make_graph([helper.make_node('Identity', ['x'], ['y'])], 'g', [x], [y]),
                      opset_imports=[helper.make_opsetid('', 13)])
m.ir_version = 8
os.makedirs('{repo}/held/1')
onnx.save(m, '{repo}/held/1/model.onnx')
open('{repo}/held/config.pbtxt', 'w').write(
    'max_batch_size: 8\\ndynamic_batching {{ preferred_batch_size: [8] max_queue_delay_microseconds: 3000000 wait_when_idle: true }}\\n')
"""], check=True)
    for d, _, files in os.walk(tmp):
        os.chmod(d, 0o755)
        for f in files:
            os.chmod(os.path.join(d, f), 0o644)
    return repo


def container_ip(name):
    return podman("inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                  name).stdout.strip()


def git_head():
    out = subprocess.run(["git", "-C", ARGS.source_dir, "rev-parse", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else None


class ContainerCase(unittest.TestCase):
    def setUp(self):
        if deploytest.podman_command() is None:
            self.fail("podman is not installed: run WITH_DEPLOY=1 scripts/setup.sh (make test-deploy does)")
        if podman("image", "exists", ARGS.image, check=False).returncode != 0:
            self.fail(f"no image {ARGS.image}: run `make image` first (make test-deploy does)")
        self.tmp = tempfile.mkdtemp(prefix="ortserve-container-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.names = []

    def run_container(self, args, image_args, name=None):
        name = name or f"ortserve-test-{uuid.uuid4().hex[:8]}"
        self.names.append(name)
        self.addCleanup(lambda: podman("rm", "--force", "--time", "0", name, check=False))
        podman("run", "--detach", "--name", name, *args, ARGS.image, *image_args)
        return name

    def logs(self, name):
        r = podman("logs", name, check=False)
        return r.stdout + r.stderr


class ImageTest(ContainerCase):
    def test_image_serves_the_mounted_repository_as_non_root_and_drains_on_sigterm(self):
        t0 = time.monotonic()
        repo = make_repository(self.tmp)
        http, metrics = deploytest.free_port(), deploytest.free_port()
        name = self.run_container(
            ["--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
             "--volume", f"{repo}:/srv/models:ro", "--publish", f"127.0.0.1:{http}:8000",
             "--publish", f"127.0.0.1:{metrics}:8002"],
            ["--model-repository=/srv/models", "--shutdown-delay-seconds=1", "--shutdown-grace-seconds=20"])
        base = f"http://127.0.0.1:{http}"
        deploytest.wait_for(lambda: deploytest.ready(http) or podman("inspect", "--format", "{{.State.Running}}",
                                                                         name).stdout.strip() == "false",
                            120, "the container ready")
        self.assertTrue(deploytest.ready(http), self.logs(name))
        TIMES["container_start_to_ready_s"] = round(time.monotonic() - t0, 1)

        # The image's user, not root.
        self.assertEqual(podman("inspect", "--format", "{{.Config.User}}", ARGS.image).stdout.strip(), "10001:10001")
        self.assertEqual(podman("top", name, "user", "huser").stdout.split()[2:], ["ortserve", "10001"])

        # An SAE verdict and a KServe v2 inference.
        status, body = deploytest.http("POST", base + "/api/v1/sae/analyze", json.dumps(
            {"patientId": "p-17", "reportText": "I cant breathe and my throat is swelling"}))
        self.assertEqual(status, 200, body)
        self.assertTrue(json.loads(body)["isSAE"], body)
        status, body = deploytest.http("POST", base + "/v2/models/iris_classifier/infer", deploytest.IRIS_INFER)
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["model_name"], "iris_classifier")

        # --version and the build_info metric name the same commit as the image label.
        label = podman("inspect", "--format", '{{index .Config.Labels "org.opencontainers.image.revision"}}',
                       ARGS.image).stdout.strip()
        version = podman("run", "--rm", ARGS.image, "--version").stdout.strip()
        self.assertRegex(version, r"^ortserve \S+ \(commit [0-9a-f]{40}, ONNX Runtime \S+\)$")
        self.assertIn(f"commit {label},", version)
        head = git_head()
        if head:
            self.assertEqual(label, head, "the image was built from another commit: run `make image`")
        status, text = deploytest.http("GET", f"http://127.0.0.1:{metrics}/metrics")
        self.assertRegex(text.decode(), rf'ortserve_build_info\{{[^}}]*commit="{label}"[^}}]*\}} 1')

        # SIGTERM with three requests held in the batcher: readiness goes
        # false while they wait, all three are answered, the container exits 0.
        statuses = []
        body = json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]})
        clients = [threading.Thread(target=lambda: statuses.append(
            deploytest.http("POST", base + "/v2/models/held/infer", body, timeout=60)[0])) for _ in range(3)]
        for c in clients:
            c.start()
        deploytest.wait_for(lambda: re.search(r'ortserve_pending_requests\{model="held",version="1"\} 3',
                                              deploytest.http("GET", f"http://127.0.0.1:{metrics}/metrics")[1]
                                              .decode()), 20, "three requests held")
        t_stop = time.monotonic()
        podman("kill", "--signal", "TERM", name)
        deploytest.wait_for(lambda: deploytest.http("GET", base + "/v2/health/ready")[0] == 503, 5,
                            "readiness to go false")
        code = podman("wait", name, timeout=60).stdout.strip()
        TIMES["sigterm_to_exit_s"] = round(time.monotonic() - t_stop, 1)
        for c in clients:
            c.join(timeout=60)
        logs = self.logs(name)
        self.assertEqual(code, "0", logs)
        self.assertEqual(statuses, [200, 200, 200], logs)
        self.assertIn("draining 3 admitted request(s)", logs)
        self.assertIn("drained; stopping", logs)


class KServeRuntimeTest(ContainerCase):
    def test_clusterservingruntime_container_serves_a_triton_layout_repository_at_mnt_models(self):
        with open(os.path.join(ARGS.source_dir, "deploy/kserve/clusterservingruntime.yaml")) as f:
            (container,) = yaml.safe_load(f)["spec"]["containers"]
        repo = make_repository(self.tmp)  # What the storage initializer leaves in /mnt/models.
        http, grpc, metrics = deploytest.free_port(), deploytest.free_port(), deploytest.free_port()
        env = []
        for e in container.get("env", []):
            env += ["--env", f"{e['name']}={e['value']}"]
        name = self.run_container(
            env + ["--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL", "--user",
                   str(container["securityContext"]["runAsUser"]), "--volume", f"{repo}:/mnt/models:ro",
                   "--publish", f"127.0.0.1:{http}:8080", "--publish", f"127.0.0.1:{grpc}:8081",
                   "--publish", f"127.0.0.1:{metrics}:8002"],
            container["args"])
        deploytest.wait_for(lambda: deploytest.ready(http), 120, "the runtime container ready")
        status, body = deploytest.http("POST", f"http://127.0.0.1:{http}/v2/models/iris_classifier/infer",
                                       deploytest.IRIS_INFER)
        self.assertEqual(status, 200, body)
        # gRPC: the KServe v2 service on 8081 (the CLI's health call is ServerLive + ServerReady).
        cli = subprocess.run([ARGS.cli, "--protocol", "grpc", "--url", f"127.0.0.1:{grpc}", "health"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(cli.returncode, 0, cli.stdout + cli.stderr + self.logs(name))
        cli = subprocess.run([ARGS.cli, "--protocol", "grpc", "--url", f"127.0.0.1:{grpc}", "--format", "json",
                              "infer", "iris_classifier", "--input", "input=1,4:FP32:[[5.1,3.5,1.4,0.2]]"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(cli.returncode, 0, cli.stdout + cli.stderr)
        status, text = deploytest.http("GET", f"http://127.0.0.1:{metrics}/metrics")
        self.assertIn('ortserve_request_total{model="iris_classifier"', text.decode())


    def test_clusterservingruntime_container_serves_a_single_model_onnx_under_the_isvc_name(self):
        with open(os.path.join(ARGS.source_dir, "deploy/kserve/clusterservingruntime.yaml")) as f:
            (container,) = yaml.safe_load(f)["spec"]["containers"]
        # A storageUri naming one file: the storage initializer leaves /mnt/models/model.onnx.
        repo = os.path.join(self.tmp, "single")
        os.makedirs(repo)
        shutil.copy(os.path.join(ARGS.source_dir, "models/iris_classifier/1/model.onnx"), repo)
        for d in (self.tmp, repo):
            os.chmod(d, 0o755)
        os.chmod(os.path.join(repo, "model.onnx"), 0o644)
        http = deploytest.free_port()
        # KServe fills {{.Name}} with the InferenceService's name.
        args = [a.replace("{{.Name}}", "iris") for a in container["args"]]
        name = self.run_container(
            ["--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL", "--user",
             str(container["securityContext"]["runAsUser"]), "--volume", f"{repo}:/mnt/models:ro",
             "--publish", f"127.0.0.1:{http}:8080"],
            args)
        deploytest.wait_for(lambda: deploytest.ready(http), 120, "the runtime container ready")
        status, body = deploytest.http("POST", f"http://127.0.0.1:{http}/v2/models/iris/infer",
                                       deploytest.IRIS_INFER)
        self.assertEqual(status, 200, f"{body!r} {self.logs(name)}")


class KubePlayTest(ContainerCase):
    def test_podman_kube_play_runs_the_rendered_deployment(self):
        if shutil.which("kubectl") is None:
            self.skipTest("needs kubectl to render deploy/kubernetes")
        rendered = subprocess.run(["kubectl", "kustomize",
                                   os.path.join(ARGS.source_dir, "deploy/kubernetes/overlays/small")],
                                  capture_output=True, text=True, check=True).stdout
        docs = [d for d in yaml.safe_load_all(rendered) if d]
        # What podman runs: the ConfigMap and the Deployment, as rendered. The
        # claim is bound to a podman volume of its name, provisioned (filled)
        # beforehand, as a cluster's storage would be.
        play = [d for d in docs if d["kind"] in ("ConfigMap", "Deployment")]
        deploy = next(d for d in play if d["kind"] == "Deployment")
        self.assertEqual(deploy["spec"]["template"]["spec"]["containers"][0]["image"], ARGS.image)
        claim = next(d for d in docs if d["kind"] == "PersistentVolumeClaim")["metadata"]["name"]
        volumes = deploy["spec"]["template"]["spec"]["volumes"]
        self.assertIn(claim, [v.get("persistentVolumeClaim", {}).get("claimName") for v in volumes])
        path = os.path.join(self.tmp, "play.yaml")
        with open(path, "w") as f:
            yaml.safe_dump_all(play, f)
        # The claim's volume holds the demo models, as a provisioned volume would.
        repo = make_repository(self.tmp)
        podman("volume", "rm", "--force", claim, check=False)
        podman("volume", "create", claim)
        self.addCleanup(lambda: podman("volume", "rm", "--force", claim, check=False))
        tarball = os.path.join(self.tmp, "models.tar")
        subprocess.run(["tar", "-C", repo, "-cf", tarball, "."], check=True)
        podman("volume", "import", claim, tarball)
        self.addCleanup(lambda: podman("kube", "down", path, check=False))
        out = podman("kube", "play", "--replace", path).stdout.split()
        # "Pod:\n<id>\nContainer:\n<id>"
        pod, container = out[out.index("Pod:") + 1], out[out.index("Container:") + 1]
        infra = podman("pod", "inspect", "--format", "{{.InfraContainerID}}", pod).stdout.strip()
        ip = deploytest.wait_for(lambda: container_ip(infra), 30, "the pod's address")
        deploytest.wait_for(lambda: deploytest.ready(8000, host=ip), 120, "the pod ready")
        status, body = deploytest.http("POST", f"http://{ip}:8000/api/v1/sae/analyze", deploytest.SAE_BODY)
        self.assertEqual(status, 200, body)
        # The ConfigMap reached the server: JSON logs, one intra-op thread.
        logs = self.logs(container)
        self.assertIn('"level"', logs)
        status, text = deploytest.http("GET", f"http://{ip}:8002/metrics")
        self.assertIn("ortserve_build_info{", text.decode())
        user = podman("top", container, "huser").stdout.split()[1:]
        self.assertEqual(user, ["10001"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--cli", required=True)
    parser.add_argument("--source-dir", required=True)
    parser.add_argument("--image", default="localhost/ortserve:latest")
    ARGS, rest = parser.parse_known_args()
    ARGS.source_dir = os.path.abspath(ARGS.source_dir)
    program = unittest.main(argv=[sys.argv[0]] + rest, exit=False, verbosity=2)
    print(json.dumps(TIMES))
    sys.exit(0 if program.result.wasSuccessful() else 1)
