# SPDX-License-Identifier: Apache-2.0
"""Wire compatibility of ortserve's KServe v2 gRPC service with a Python client.

The client stubs are generated at test time from proto/grpc_service.proto and
proto/model_config.proto by Debian's protoc + grpc_python_plugin, so the test
checks the .proto files as a third-party client compiles them. It starts the
real `ortserve` binary on free ports over the demo models and calls
ModelInfer (typed `contents` and raw bytes), ModelStreamInfer (inference, and
tokens from the demo decoder), ModelConfig and ServerMetadata.

Run: /usr/bin/python3 kserve_grpc_client_test.py --server build/src/server/ortserve \
         --source-dir . [unittest args]
"""

import argparse
import importlib
import os
import re
import select
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import grpc
import numpy as np

ARGS = None
pb = None        # grpc_service_pb2
pb_grpc = None   # grpc_service_pb2_grpc
SERVER = None
PORT = None


def generate_stubs(source_dir, out_dir):
    proto_dir = os.path.join(source_dir, "proto")
    cmd = ["protoc", f"-I{proto_dir}", f"--python_out={out_dir}", f"--grpc_python_out={out_dir}",
           "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin",
           os.path.join(proto_dir, "model_config.proto"), os.path.join(proto_dir, "grpc_service.proto")]
    subprocess.run(cmd, check=True)
    sys.path.insert(0, out_dir)
    return importlib.import_module("grpc_service_pb2"), importlib.import_module("grpc_service_pb2_grpc")


def start_server(binary, repository, timeout=60):
    proc = subprocess.Popen(
        [binary, "--model-repository", repository, "--http-port", "-1", "--metrics-port", "-1",
         "--grpc-address", "127.0.0.1", "--grpc-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            output += chunk
            m = re.search(rb"gRPC listening on [^ ]*:(\d+)", output)
            if m:
                # Keep draining the server's log so it never blocks on a full pipe.
                threading.Thread(target=lambda: [None for _ in iter(lambda: os.read(proc.stdout.fileno(), 4096), b"")],
                                 daemon=True).start()
                return proc, int(m.group(1))
        if proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError("ortserve did not report its gRPC port:\n" + output.decode(errors="replace"))


def raw_bytes(strings):
    return b"".join(struct.pack("<I", len(s)) + s for s in strings)


def split_raw_bytes(raw):
    out, at = [], 0
    while at < len(raw):
        (n,) = struct.unpack_from("<I", raw, at)
        out.append(raw[at + 4:at + 4 + n])
        at += 4 + n
    return out


class KServeGrpcClientTest(unittest.TestCase):
    def setUp(self):
        self.channel = grpc.insecure_channel(f"127.0.0.1:{PORT}")
        self.stub = pb_grpc.GRPCInferenceServiceStub(self.channel)

    def tearDown(self):
        self.channel.close()

    def output(self, response, name):
        for i, out in enumerate(response.outputs):
            if out.name == name:
                return out, response.raw_output_contents[i]
        self.fail(f"no output {name} in {[o.name for o in response.outputs]}")

    def test_server_metadata(self):
        md = self.stub.ServerMetadata(pb.ServerMetadataRequest(), timeout=30)
        self.assertEqual(md.name, "ortserve")
        self.assertIn("model_configuration", md.extensions)
        self.assertTrue(self.stub.ServerLive(pb.ServerLiveRequest(), timeout=30).live)
        self.assertTrue(self.stub.ServerReady(pb.ServerReadyRequest(), timeout=30).ready)

    def test_model_config(self):
        config = self.stub.ModelConfig(pb.ModelConfigRequest(name="multi_io"), timeout=30).config
        self.assertEqual(config.name, "multi_io")
        self.assertEqual(config.max_batch_size, 8)
        self.assertEqual([i.name for i in config.input], ["a", "b", "flag"])
        self.assertEqual(list(config.input[0].dims), [3])
        # Field 2 of ModelInput is data_type; TYPE_INT32 is 8 in Triton's enum.
        self.assertEqual(config.input[1].data_type, 8)
        with self.assertRaises(grpc.RpcError) as err:
            self.stub.ModelConfig(pb.ModelConfigRequest(name="no_such_model"), timeout=30)
        self.assertEqual(err.exception.code(), grpc.StatusCode.NOT_FOUND)

    def iris_request(self, rows, use_contents):
        rows = np.asarray(rows, dtype=np.float32)
        request = pb.ModelInferRequest(model_name="iris_classifier", id="py")
        tensor = request.inputs.add(name="input", datatype="FP32", shape=list(rows.shape))
        if use_contents:
            tensor.contents.fp32_contents.extend(rows.flatten().tolist())
        else:
            request.raw_input_contents.append(rows.tobytes())
        return request

    def test_model_infer_contents_and_raw_agree(self):
        rows = [[5.1, 3.5, 1.4, 0.2], [6.4, 3.2, 4.5, 1.5], [6.3, 3.3, 6.0, 2.5]]
        answers = []
        for use_contents in (True, False):
            response = self.stub.ModelInfer(self.iris_request(rows, use_contents), timeout=30)
            self.assertEqual(response.id, "py")
            label, raw = self.output(response, "label")
            self.assertEqual(label.datatype, "INT64")
            self.assertEqual(list(label.shape), [3])
            self.assertEqual(np.frombuffer(raw, dtype=np.int64).tolist(), [0, 1, 2])
            probs, raw_probs = self.output(response, "probabilities")
            p = np.frombuffer(raw_probs, dtype=np.float32).reshape(list(probs.shape))
            np.testing.assert_allclose(p.sum(axis=1), np.ones(3), rtol=1e-5)
            answers.append(raw_probs)
        self.assertEqual(answers[0], answers[1])

    def test_model_infer_bytes_contents(self):
        request = pb.ModelInferRequest(model_name="string_length")
        text = [b"yes", b"Maybe", b"other"]
        request.inputs.add(name="text", datatype="BYTES", shape=[3]).contents.bytes_contents.extend(text)
        response = self.stub.ModelInfer(request, timeout=30)
        _, upper = self.output(response, "upper")
        self.assertEqual(split_raw_bytes(upper), [b"YES", b"MAYBE", b"OTHER"])
        _, ids = self.output(response, "answer_id")
        self.assertEqual(np.frombuffer(ids, dtype=np.int64).tolist(), [1, 2, -1])
        # The same request with raw BYTES.
        request = pb.ModelInferRequest(model_name="string_length")
        request.inputs.add(name="text", datatype="BYTES", shape=[3])
        request.raw_input_contents.append(raw_bytes(text))
        self.assertEqual(split_raw_bytes(self.output(self.stub.ModelInfer(request, timeout=30), "upper")[1]),
                         [b"YES", b"MAYBE", b"OTHER"])

    def test_model_infer_invalid_argument(self):
        request = self.iris_request([[1, 2, 3]], use_contents=False)
        with self.assertRaises(grpc.RpcError) as err:
            self.stub.ModelInfer(request, timeout=30)
        self.assertEqual(err.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("'input'", err.exception.details())

    def test_model_stream_infer(self):
        def requests():
            for i in range(5):
                r = self.iris_request([[6.3, 3.3, 6.0, 2.5]], use_contents=i % 2 == 0)
                r.id = f"s{i}"
                if i == 2:
                    r.model_name = "no_such_model"
                yield r
        responses = list(self.stub.ModelStreamInfer(requests(), timeout=30))
        self.assertEqual(len(responses), 5)
        for i, r in enumerate(responses):
            self.assertEqual(r.infer_response.id, f"s{i}")
            if i == 2:
                self.assertIn("no_such_model", r.error_message)
            else:
                self.assertEqual(r.error_message, "")
                _, raw = self.output(r.infer_response, "label")
                self.assertEqual(np.frombuffer(raw, dtype=np.int64).tolist(), [2])

    def test_model_stream_infer_generates_tokens(self):
        # A generate request to the demo decoder, as Triton's clients send one
        # to a decoupled LLM model: streamed, then whole (greedy both times).
        def request(request_id, stream):
            r = pb.ModelInferRequest(model_name="tiny_decoder", id=request_id)
            r.inputs.add(name="text_input", datatype="BYTES", shape=[1])
            r.raw_input_contents.append(raw_bytes([b"I have been feeling"]))
            r.inputs.add(name="stream", datatype="BOOL", shape=[1])
            r.raw_input_contents.append(b"\x01" if stream else b"\x00")
            r.parameters["max_tokens"].int64_param = 12
            r.parameters["temperature"].double_param = 0.0
            r.parameters["ignore_eos"].bool_param = True
            return r

        responses = list(self.stub.ModelStreamInfer(iter([request("streamed", True), request("whole", False)]),
                                                    timeout=30))
        by_id = {}
        for r in responses:
            self.assertEqual(r.error_message, "")
            by_id.setdefault(r.infer_response.id, []).append(r.infer_response)
        self.assertEqual(sorted(by_id), ["streamed", "whole"])
        streamed, whole = by_id["streamed"], by_id["whole"]
        finals = [r.parameters["triton_final_response"].bool_param for r in streamed]
        self.assertGreaterEqual(len(streamed), 3)
        self.assertEqual(finals, [False] * (len(streamed) - 1) + [True])
        self.assertEqual(len(whole), 1)
        self.assertTrue(whole[0].parameters["triton_final_response"].bool_param)
        text = b"".join(split_raw_bytes(self.output(r, "text_output")[1])[0] for r in streamed)
        self.assertEqual(text, split_raw_bytes(self.output(whole[0], "text_output")[1])[0])
        self.assertEqual(whole[0].parameters["completion_tokens"].int64_param, 12)


def main():
    global ARGS, pb, pb_grpc, SERVER, PORT
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True, help="the ortserve binary")
    parser.add_argument("--source-dir", required=True, help="the ortserve source tree")
    ARGS, rest = parser.parse_known_args()
    with tempfile.TemporaryDirectory(prefix="ortserve-pygrpc-") as out_dir:
        pb, pb_grpc = generate_stubs(ARGS.source_dir, out_dir)
        SERVER, PORT = start_server(ARGS.server, os.path.join(ARGS.source_dir, "models"))
        try:
            program = unittest.main(argv=[sys.argv[0]] + rest, exit=False, verbosity=2)
        finally:
            SERVER.send_signal(signal.SIGTERM)
            try:
                SERVER.wait(timeout=30)
            except subprocess.TimeoutExpired:
                SERVER.kill()
    sys.exit(0 if program.result.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
