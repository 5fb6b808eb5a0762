# SPDX-License-Identifier: Apache-2.0
"""The Kubernetes and KServe manifests, rendered offline with `kubectl
kustomize` and checked against each other and against the real server
(issue #19, parts 2 and 3):
  - every overlay renders, with the Deployment, Service, PodDisruptionBudget,
    HorizontalPodAutoscaler, ServiceMonitor, NetworkPolicy, ConfigMap and the
    model volume; selectors select the pods, named ports exist;
  - probes use the v2 health endpoints on the port the server listens on;
  - ONNX Runtime threads match the CPU limit; terminationGracePeriodSeconds
    covers the preStop sleep plus the server's shutdown delay and grace;
  - the ConfigMap's ORTSERVE_* variables are flags the binary accepts: the
    real server starts from them;
  - the HPA's metrics are the prometheus-adapter rules' names, and the series
    those rules read are in a real server's /metrics;
  - the KServe ClusterServingRuntime speaks v2 REST and gRPC on KServe's
    ports for model format onnx, reads /mnt/models, and the examples use it.

Run: /usr/bin/python3 manifests_test.py --server build/src/server/ortserve --source-dir .
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploytest  # noqa: E402

ARGS = None
K8S = "deploy/kubernetes"
OVERLAYS = [f"{K8S}/base", f"{K8S}/overlays/production", f"{K8S}/overlays/small"]


def kubectl_kustomize_ok():
    if shutil.which("kubectl") is None:
        return False
    out = subprocess.run(["kubectl", "version", "--client"], capture_output=True, text=True).stdout
    m = re.search(r"Kustomize Version: v(\d+)", out)
    return bool(m) and int(m.group(1)) >= 4


def render(path):
    out = subprocess.run(["kubectl", "kustomize", os.path.join(ARGS.source_dir, path)], capture_output=True,
                         text=True)
    if out.returncode != 0:
        raise AssertionError(f"kubectl kustomize {path} failed:\n{out.stderr}")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def one(docs, kind):
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def cpu_cores(quantity):
    q = str(quantity)
    return int(q[:-1]) / 1000 if q.endswith("m") else float(q)


def flag_value(args, flag):
    for a in args:
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


@unittest.skipUnless(kubectl_kustomize_ok(), "needs kubectl with Kustomize v4 or later on PATH")
class KubernetesManifestsTest(unittest.TestCase):
    def check_overlay(self, path):
        docs = render(path)
        kinds = {d["kind"] for d in docs}
        for kind in ("Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "ServiceMonitor",
                     "NetworkPolicy", "ConfigMap", "PersistentVolumeClaim"):
            self.assertIn(kind, kinds, path)
        deploy = one(docs, "Deployment")
        pod = deploy["spec"]["template"]
        labels = pod["metadata"]["labels"]
        spec = pod["spec"]
        (c,) = spec["containers"]
        config = one(docs, "ConfigMap")
        env = config["data"]
        self.assertEqual([e["configMapRef"]["name"] for e in c["envFrom"]], [config["metadata"]["name"]])
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        self.assertEqual(int(flag_value(c["args"], "--http-port")), ports["http"])
        self.assertEqual(int(flag_value(c["args"], "--grpc-port")), ports["grpc"])
        self.assertEqual(int(flag_value(c["args"], "--metrics-port")), ports["metrics"])

        # Probes: the v2 health endpoints on the HTTP port.
        self.assertEqual(c["startupProbe"]["httpGet"]["path"], "/v2/health/live")
        self.assertEqual(c["readinessProbe"]["httpGet"]["path"], "/v2/health/ready")
        self.assertEqual(c["livenessProbe"]["httpGet"]["path"], "/v2/health/live")
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            self.assertEqual(c[probe]["httpGet"]["port"], "http", probe)

        # Threads agree with the CPU the container may use.
        limits, requests = c["resources"]["limits"], c["resources"]["requests"]
        self.assertEqual(cpu_cores(limits["cpu"]), cpu_cores(requests["cpu"]), f"{path}: CPU request != limit")
        self.assertEqual(int(env["ORTSERVE_INTRA_OP_THREAD_COUNT"]), cpu_cores(limits["cpu"]),
                         f"{path}: ORT intra-op threads != CPU limit")
        self.assertLessEqual(int(env["ORTSERVE_TOKENIZER_THREADS"]), cpu_cores(limits["cpu"]))
        self.assertEqual(env["ORTSERVE_ORT_ALLOW_SPINNING"], "false")

        # Shutdown: the grace period covers preStop + delay + drain, with room.
        pre_stop = c["lifecycle"]["preStop"]["exec"]["command"]
        self.assertEqual(pre_stop[0], "/bin/sleep")
        drain = (float(pre_stop[1]) + float(env.get("ORTSERVE_SHUTDOWN_DELAY_SECONDS", 0)) +
                 float(env["ORTSERVE_SHUTDOWN_GRACE_SECONDS"]))
        self.assertGreaterEqual(spec["terminationGracePeriodSeconds"], drain + 2, path)
        self.assertEqual(deploy["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"], 0)

        # Non-root, read-only root, models read-only at the repository path.
        self.assertTrue(spec["securityContext"]["runAsNonRoot"])
        self.assertNotEqual(spec["securityContext"]["runAsUser"], 0)
        self.assertTrue(c["securityContext"]["readOnlyRootFilesystem"])
        mounts = {m["name"]: m for m in c["volumeMounts"]}
        self.assertEqual(mounts["models"]["mountPath"], env["ORTSERVE_MODEL_REPOSITORY"])
        self.assertTrue(mounts["models"]["readOnly"])
        volumes = {v["name"]: v for v in spec["volumes"]}
        claim = volumes["models"]["persistentVolumeClaim"]["claimName"]
        self.assertEqual(one(docs, "PersistentVolumeClaim")["metadata"]["name"], claim)

        # Selectors select the pods; named ports exist.
        service = one(docs, "Service")
        self.assertTrue(selects(service["spec"]["selector"], labels))
        service_ports = {p["name"]: p for p in service["spec"]["ports"]}
        self.assertEqual(set(service_ports), {"http", "grpc", "metrics"})
        for p in service_ports.values():
            self.assertIn(p["targetPort"], ports)
        self.assertEqual(service_ports["grpc"]["appProtocol"], "kubernetes.io/h2c")
        self.assertTrue(selects(one(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"], labels))
        monitor = one(docs, "ServiceMonitor")
        self.assertTrue(selects(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"]))
        self.assertEqual([e["port"] for e in monitor["spec"]["endpoints"]], ["metrics"])
        policy = one(docs, "NetworkPolicy")
        self.assertTrue(selects(policy["spec"]["podSelector"]["matchLabels"], labels))
        for rule in policy["spec"]["ingress"]:
            for p in rule["ports"]:
                self.assertIn(p["port"], ports)
        hpa = one(docs, "HorizontalPodAutoscaler")
        self.assertEqual(hpa["spec"]["scaleTargetRef"]["name"], deploy["metadata"]["name"])
        self.assertLessEqual(hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"])
        return docs

    def test_every_overlay_renders_consistent_manifests(self):
        for path in OVERLAYS:
            with self.subTest(overlay=path):
                self.check_overlay(path)

    def test_production_overlay_runs_three_or_more_replicas_of_four_cpus(self):
        docs = render(f"{K8S}/overlays/production")
        deploy = one(docs, "Deployment")
        self.assertEqual(deploy["metadata"]["namespace"], "ortserve")
        self.assertGreaterEqual(deploy["spec"]["replicas"], 3)
        self.assertEqual(cpu_cores(deploy["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"]),
                         4)
        self.assertEqual(one(docs, "HorizontalPodAutoscaler")["spec"]["minReplicas"], 3)

    def test_server_starts_from_the_configmap_environment(self):
        env = one(render(f"{K8S}/overlays/small"), "ConfigMap")["data"]
        # Every variable names a flag (CLI11 lists each in --help).
        help_text = subprocess.run([ARGS.server, "--help"], capture_output=True, text=True).stdout
        for name in env:
            self.assertIn(name, help_text)
        # The real server takes them (the command line overrides the model
        # path and the ports here; a wrong value in the ConfigMap fails start).
        tmp = tempfile.mkdtemp(prefix="ortserve-cm-")
        self.addCleanup(shutil.rmtree, tmp, True)
        port = deploytest.free_port()
        server = deploytest.Ortserve(ARGS.server, os.path.join(tmp, "log"), [
            "--model-repository", os.path.join(ARGS.source_dir, "models"), "--http-port", str(port),
            "--grpc-port", "-1", "--metrics-port", "-1", "--model-control-mode", "explicit",
            "--load-model", "iris_classifier"])
        saved = dict(os.environ)
        os.environ.update(env)
        try:
            server.start()
        finally:
            os.environ.clear()
            os.environ.update(saved)
        self.addCleanup(server.stop)
        deploytest.wait_for(lambda: deploytest.ready(port) or server.proc.poll() is not None, 60, "ready")
        self.assertIsNone(server.proc.poll(), server.output())
        # JSON logs, as the ConfigMap says, and the thread count it gave.
        self.assertIn('"level"', server.output())

    def test_hpa_metrics_are_served_by_the_shipped_adapter_rules_from_real_series(self):
        rules = yaml.safe_load(one(render(f"{K8S}/prometheus-adapter"), "ConfigMap")["data"]["config.yaml"])["rules"]
        served = {r["name"]["as"]: r for r in rules}
        hpa = one(render(f"{K8S}/base"), "HorizontalPodAutoscaler")
        names = [m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"]]
        self.assertEqual(sorted(names), sorted(served))
        # The series each rule reads exist, with the labels it groups by
        # after Prometheus adds namespace and pod, on a real server.
        tmp = tempfile.mkdtemp(prefix="ortserve-adapter-")
        self.addCleanup(shutil.rmtree, tmp, True)
        port, metrics = deploytest.free_port(), deploytest.free_port()
        server = deploytest.Ortserve(ARGS.server, os.path.join(tmp, "log"), [
            "--model-repository", os.path.join(ARGS.source_dir, "models"), "--http-port", str(port),
            "--grpc-port", "-1", "--metrics-port", str(metrics), "--model-control-mode", "explicit",
            "--load-model", "iris_classifier"]).start()
        self.addCleanup(server.stop)
        deploytest.wait_for(lambda: deploytest.ready(port), 60, "ready")
        status, _ = deploytest.http("POST", f"http://127.0.0.1:{port}/v2/models/iris_classifier/infer",
                                    deploytest.IRIS_INFER)
        self.assertEqual(status, 200)
        text = deploytest.wait_for(
            lambda: (lambda b: b if "ortserve_request_duration_seconds_bucket{" in b else None)(
                deploytest.http("GET", f"http://127.0.0.1:{metrics}/metrics")[1].decode()), 10, "metrics")
        for rule in rules:
            series = rule["seriesQuery"].split("{")[0]
            self.assertRegex(text, rf"(?m)^{series}\{{", series)
            self.assertIn("<<.GroupBy>>", rule["metricsQuery"])
            self.assertEqual(set(rule["resources"]["overrides"]), {"namespace", "pod"})


@unittest.skipUnless(kubectl_kustomize_ok(), "needs kubectl with Kustomize v4 or later on PATH")
class KServeManifestsTest(unittest.TestCase):
    def test_runtime_serves_onnx_over_v2_rest_and_grpc_from_mnt_models(self):
        runtime = one(render("deploy/kserve"), "ClusterServingRuntime")
        spec = runtime["spec"]
        self.assertIn("onnx", [f["name"] for f in spec["supportedModelFormats"]])
        self.assertEqual(set(spec["protocolVersions"]), {"v2", "grpc-v2"})
        (c,) = spec["containers"]
        self.assertEqual(c["name"], "kserve-container")  # The name KServe looks for.
        self.assertEqual(flag_value(c["args"], "--model-repository"), "/mnt/models")
        # A single-file storageUri is served under the InferenceService's name.
        self.assertEqual(flag_value(c["args"], "--model-name"), "{{.Name}}")
        self.assertEqual(flag_value(c["args"], "--http-port"), "8080")
        self.assertEqual(flag_value(c["args"], "--grpc-port"), "8081")
        self.assertEqual(flag_value(c["args"], "--metrics-port"), spec["annotations"]["prometheus.kserve.io/port"])
        self.assertEqual([p["containerPort"] for p in c["ports"]], [8080])
        # The shutdown fits Kubernetes' default grace period (30 s).
        self.assertLessEqual(float(flag_value(c["args"], "--shutdown-delay-seconds")) +
                             float(flag_value(c["args"], "--shutdown-grace-seconds")), 30 - 2)
        self.assertEqual(c["readinessProbe"]["httpGet"]["path"], "/v2/health/ready")
        env = {e["name"]: e["value"] for e in c["env"]}
        self.assertEqual(int(env["ORTSERVE_INTRA_OP_THREAD_COUNT"]), cpu_cores(c["resources"]["limits"]["cpu"]))
        help_text = subprocess.run([ARGS.server, "--help"], capture_output=True, text=True).stdout
        for name in env:
            self.assertIn(name, help_text)
        for arg in c["args"]:
            self.assertIn(arg.split("=")[0], help_text)

    def test_examples_use_the_runtime_with_the_grpc_example_on_its_grpc_port(self):
        runtime = one(render("deploy/kserve"), "ClusterServingRuntime")
        grpc_port = int(flag_value(runtime["spec"]["containers"][0]["args"], "--grpc-port"))
        docs = render("deploy/kserve/examples")
        with open(os.path.join(ARGS.source_dir, "deploy/kserve/examples/inferenceservice-canary.yaml")) as f:
            docs.append(yaml.safe_load(f))
        self.assertEqual(len(docs), 3)
        for isvc in docs:
            model = isvc["spec"]["predictor"]["model"]
            self.assertEqual(model["runtime"], runtime["metadata"]["name"])
            self.assertEqual(model["modelFormat"]["name"], "onnx")
            if model["protocolVersion"] == "grpc-v2":
                self.assertEqual([(p["name"], p["containerPort"]) for p in model["ports"]], [("h2c", grpc_port)])
        canary = docs[2]["spec"]["predictor"]
        self.assertTrue(0 < canary["canaryTrafficPercent"] < 100)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--source-dir", required=True)
    ARGS, rest = parser.parse_known_args()
    ARGS.source_dir = os.path.abspath(ARGS.source_dir)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
