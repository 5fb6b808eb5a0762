# SPDX-License-Identifier: Apache-2.0
"""`make release` (scripts/make_release.sh, issue 24 part 5): the build becomes
ortserve-<version>-linux-<arch>.tar.gz plus a .sha256 that `sha256sum -c`
accepts; two runs give the same bytes; unpacked anywhere, the one top folder
holds a binary that finds its ONNX Runtime beside it and serves the demo
models it carries (KServe v2, the SAE API, the INT8 sibling).

Run: /usr/bin/python3 release_test.py --build-dir build --source-dir .
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploytest  # noqa: E402

ARGS = None


class ReleaseTarballTest(unittest.TestCase):
    def test_tarball_is_checksummed_reproducible_and_serves_when_unpacked(self):
        tmp = tempfile.mkdtemp(prefix="ortserve-release-")
        self.addCleanup(shutil.rmtree, tmp, True)
        script = os.path.join(ARGS.source_dir, "scripts", "make_release.sh")
        outs = [os.path.join(tmp, "out1"), os.path.join(tmp, "out2")]
        for out in outs:
            subprocess.run([script, ARGS.build_dir, out], check=True, capture_output=True)
        names = sorted(os.listdir(outs[0]))
        self.assertEqual(len(names), 2, names)
        tarball, checksum = names
        m = re.fullmatch(r"ortserve-(\d+\.\d+\.\d+[^-]*)-linux-(x86_64|aarch64)\.tar\.gz", tarball)
        self.assertIsNotNone(m, tarball)
        self.assertEqual(checksum, tarball + ".sha256")
        self.assertEqual(os.uname().machine, m.group(2))  # built here for here
        check = subprocess.run(["sha256sum", "-c", checksum], cwd=outs[0], capture_output=True, text=True)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        digests = []
        for out in outs:
            with open(os.path.join(out, tarball), "rb") as f:
                digests.append(hashlib.sha256(f.read()).hexdigest())
        self.assertEqual(digests[0], digests[1], "two runs of make_release.sh differ")

        # One top folder, nothing that escapes it, no owner names.
        top = tarball[: -len(".tar.gz")]
        with tarfile.open(os.path.join(outs[0], tarball)) as tar:
            members = tar.getmembers()
            for member in members:
                self.assertTrue(member.name == top or member.name.startswith(top + "/"), member.name)
                self.assertNotIn("..", member.name.split("/"), member.name)
                if member.issym() or member.islnk():
                    self.assertFalse(member.linkname.startswith("/") or ".." in member.linkname.split("/"),
                                     f"{member.name} -> {member.linkname}")
                self.assertTrue(member.isfile() or member.isdir() or member.issym(), member.name)
                self.assertEqual((member.uid, member.gid), (0, 0), member.name)
            unpacked = os.path.join(tmp, "unpacked")
            tar.extractall(unpacked)  # every member checked above (this Python has no extraction filters)
        prefix = os.path.join(unpacked, top)
        for path in ("bin/ortserve", "lib/libonnxruntime.so.1", "share/ortserve/models/sae_classifier/config.pbtxt",
                     "share/ortserve/models/sae_classifier_int8/1/model.onnx", "share/doc/ortserve/README.md"):
            self.assertTrue(os.path.exists(os.path.join(prefix, path)), path)

        binary = os.path.join(prefix, "bin", "ortserve")
        version = subprocess.run([binary, "--version"], capture_output=True, text=True,
                                 env={k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}).stdout
        self.assertTrue(version.startswith(f"ortserve {m.group(1)} "), version)
        port = deploytest.free_port()
        server = deploytest.Ortserve(binary, os.path.join(tmp, "log"), [
            "--model-repository", os.path.join(prefix, "share/ortserve/models"), "--http-address", "127.0.0.1",
            "--http-port", str(port), "--grpc-port", "-1", "--metrics-port", "-1"])
        server.start()
        self.addCleanup(server.stop)
        deploytest.wait_for(lambda: deploytest.ready(port) or server.proc.poll() is not None, 120, "ready")
        self.assertIsNone(server.proc.poll(), server.output())
        base = f"http://127.0.0.1:{port}"
        status, body = deploytest.http("POST", f"{base}/v2/models/iris_classifier/infer", json.dumps(
            {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [6.3, 3.3, 6.0, 2.5]}]}))
        self.assertEqual(status, 200, body)
        label = next(o for o in json.loads(body)["outputs"] if o["name"] == "label")
        self.assertEqual(label["data"], [2])  # virginica
        status, body = deploytest.http("POST", f"{base}/api/v1/sae/analyze", json.dumps(
            {"patientId": "p-24", "reportText": "I cant breathe and my throat is swelling"}))
        self.assertEqual(status, 200, body)
        self.assertTrue(json.loads(body)["isSAE"])
        status, body = deploytest.http("POST", f"{base}/v2/models/sae_classifier_int8/infer", json.dumps(
            {"parameters": {"sliding_window": True},
             "inputs": [{"name": "text", "shape": [1], "datatype": "BYTES",
                         "data": ["I cant breathe and my throat is swelling"]}],
             "outputs": [{"name": "is_positive"}]}))
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["outputs"][0]["data"], [True])


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--build-dir", required=True)
    parser.add_argument("--source-dir", required=True)
    ARGS, rest = parser.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
