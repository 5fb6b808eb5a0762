# SPDX-License-Identifier: Apache-2.0
"""What the deployment tests share: free ports, ortserve processes, HTTP calls,
waiting without fixed sleeps, and the container engine (podman with runc)."""

import atexit
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

SAE_BODY = json.dumps({"patientId": "p-1042",
                       "reportText": "I felt dizzy after the second dose and then fainted in the kitchen"})
IRIS_INFER = json.dumps({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32",
                                     "data": [5.1, 3.5, 1.4, 0.2]}]})


def free_port():
    """A port nothing listens on now (the kernel's pick for port 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, what, interval=0.05):
    """Polls `predicate` until it returns a true value; raises naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def http(method, url, body=None, timeout=10, headers=None):
    """(status, body bytes); status 0 when nothing answered."""
    data = body.encode() if isinstance(body, str) else body
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, ConnectionError, socket.timeout, TimeoutError):
        return 0, b""


def ready(port, host="127.0.0.1"):
    return http("GET", f"http://{host}:{port}/v2/health/ready", timeout=2)[0] == 200


class Ortserve:
    """One `ortserve` process on fixed ports, its log in `log_path`."""

    def __init__(self, binary, log_path, args):
        self.binary, self.log_path, self.args = binary, log_path, args
        self.proc = None

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.binary] + self.args, stdout=self.log, stderr=subprocess.STDOUT)
        return self

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.log.close()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()

    def output(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")


_CONTAINERS_CONF = None


def containers_conf():
    """A containers.conf for the tests' podman calls (CONTAINERS_CONF): the
    runc runtime, and default ulimits no higher than this process's own.
    Podman's built-in defaults (nofile 1048576, nproc 4194304) make the
    runtime fail ("error setting rlimit ... operation not permitted") where
    the caller lacks CAP_SYS_RESOURCE, as in these sandboxed machines."""
    global _CONTAINERS_CONF
    if _CONTAINERS_CONF is None:
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
        nofile = 65536 if nofile == resource.RLIM_INFINITY else min(nofile, 65536)
        nproc = 32768 if nproc == resource.RLIM_INFINITY else min(nproc, 32768)
        fd, _CONTAINERS_CONF = tempfile.mkstemp(prefix="ortserve-containers-", suffix=".conf")
        with os.fdopen(fd, "w") as f:
            f.write(f'[containers]\ndefault_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
                    '[engine]\nruntime = "runc"\n')
        os.chmod(_CONTAINERS_CONF, 0o644)
        atexit.register(os.unlink, _CONTAINERS_CONF)
    return _CONTAINERS_CONF


def podman_command():
    """podman (through sudo when not root) with the runc runtime, or None."""
    if shutil.which("podman") is None:
        return None
    env = ["env", f"CONTAINERS_CONF={containers_conf()}"]
    return (env if os.geteuid() == 0 else ["sudo", "-n"] + env) + ["podman", "--runtime", "runc"]


def podman(*args, check=True, capture=True, timeout=300):
    cmd = podman_command() + list(args)
    result = subprocess.run(cmd, capture_output=capture, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result
