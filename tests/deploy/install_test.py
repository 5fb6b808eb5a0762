# SPDX-License-Identifier: Apache-2.0
"""`cmake --install` makes a relocatable tree (issue #19, part 1): installed,
then moved to another folder, the binary finds the ONNX Runtime beside it
($ORIGIN rpath, no LD_LIBRARY_PATH) and serves the demo models the tree
carries, with the dashboard, the deploy manifests and the docs next to it.

Run: /usr/bin/python3 install_test.py --build-dir build --source-dir .
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploytest  # noqa: E402

ARGS = None


class InstallTreeTest(unittest.TestCase):
    def test_installed_tree_moved_elsewhere_serves_its_demo_models(self):
        tmp = tempfile.mkdtemp(prefix="ortserve-install-")
        self.addCleanup(shutil.rmtree, tmp, True)
        first = os.path.join(tmp, "first")
        subprocess.run(["cmake", "--install", ARGS.build_dir, "--prefix", first, "--strip"], check=True,
                       capture_output=True)
        prefix = os.path.join(tmp, "moved", "ortserve")
        os.makedirs(os.path.dirname(prefix))
        shutil.move(first, prefix)
        for path in ("bin/ortserve", "bin/ortserve-cli", "lib/libonnxruntime.so.1",
                     "share/ortserve/models/sae_classifier/config.pbtxt",
                     "share/ortserve/grafana/ortserve-dashboard.json",
                     "share/ortserve/deploy/kubernetes/base/kustomization.yaml",
                     "share/ortserve/deploy/kserve/clusterservingruntime.yaml",
                     "share/doc/ortserve/README.md", "share/doc/ortserve/docs/deploy.md"):
            self.assertTrue(os.path.exists(os.path.join(prefix, path)), path)

        binary = os.path.join(prefix, "bin/ortserve")
        env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
        runpath = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True).stdout
        self.assertIn("[$ORIGIN/../lib]", runpath)
        ldd = subprocess.run(["ldd", binary], capture_output=True, text=True, env=env).stdout
        self.assertIn(os.path.join(prefix, "bin/../lib/libonnxruntime.so.1"), ldd)
        self.assertNotIn("not found", ldd)

        port = deploytest.free_port()
        server = deploytest.Ortserve(binary, os.path.join(tmp, "log"), [
            "--model-repository", os.path.join(prefix, "share/ortserve/models"), "--http-address", "127.0.0.1",
            "--http-port", str(port), "--grpc-port", "-1", "--metrics-port", "-1"])
        server.start()
        self.addCleanup(server.stop)
        deploytest.wait_for(lambda: deploytest.ready(port) or server.proc.poll() is not None, 120, "ready")
        self.assertIsNone(server.proc.poll(), server.output())
        status, body = deploytest.http("POST", f"http://127.0.0.1:{port}/api/v1/sae/analyze", json.dumps(
            {"patientId": "p-17", "reportText": "I cant breathe and my throat is swelling"}))
        self.assertEqual(status, 200, body)
        self.assertTrue(json.loads(body)["isSAE"])
        version = subprocess.run([binary, "--version"], capture_output=True, text=True, env=env).stdout
        self.assertTrue(version.startswith("ortserve "), version)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--build-dir", required=True)
    parser.add_argument("--source-dir", required=True)
    ARGS, rest = parser.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
