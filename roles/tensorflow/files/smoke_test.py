#!/usr/bin/env python3
"""TensorFlow smoke test, run with the virtualenv's Python by the tensorflow role.

Imports TensorFlow, lists the GPUs it sees, checks a small matrix product exactly and times an
N x N multiply on the first GPU (or the CPU). TensorFlow runs in a child process so that its
native log lines (which name the CUDA libraries it failed to load) can be read when it sees no
GPU. Usage: smoke_test.py '{"expect_gpu": bool, "size": N}'. Prints one JSON object; exits 1
when the test fails, with "message" saying why and what to do.
"""
import json
import os
import re
import subprocess
import sys
import time

INNER = r"""
import json, sys, time
started = time.perf_counter()
import tensorflow as tf
imported = time.perf_counter() - started
size = int(sys.argv[1])
gpus = tf.config.list_physical_devices("GPU")
device = "/GPU:0" if gpus else "/CPU:0"
build = dict(tf.sysconfig.get_build_info())
with tf.device(device):
    small = tf.matmul(tf.constant([[1.0, 2.0], [3.0, 4.0]]), tf.constant([[5.0, 6.0], [7.0, 8.0]])).numpy().tolist()
    a = tf.ones((size, size))
    b = tf.fill((size, size), 2.0)
    tf.matmul(a, b).numpy()
    timed = time.perf_counter()
    product = tf.matmul(a, b).numpy()
    seconds = time.perf_counter() - timed
details = [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name) for gpu in gpus]
print(json.dumps({
    "tensorflow": {"version": tf.__version__, "cuda_build": bool(build.get("is_cuda_build")),
                   "cuda": build.get("cuda_version", ""), "cudnn": build.get("cudnn_version", "")},
    "gpus": details, "device": device, "import_seconds": round(imported, 2),
    "matmul": {"size": size, "seconds": round(seconds, 4),
               "gflops": round(2 * size ** 3 / seconds / 1e9, 1) if seconds else None,
               "small_product": small, "expected_small_product": [[19.0, 22.0], [43.0, 50.0]],
               "correct": small == [[19.0, 22.0], [43.0, 50.0]] and bool((product == 2.0 * size).all())},
}))
"""
LIBRARY = re.compile(r"lib[A-Za-z0-9_+-]+\.so(?:\.[0-9]+)*")
LOAD_FAILURE = re.compile(r"Could not load|Cannot dlopen|cannot open shared object|failed call to cuInit|Could not find cuda", re.I)


def main():
    settings = json.loads(sys.argv[1])
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="0")
    result = subprocess.run([sys.executable, "-c", INNER, str(settings["size"])],
                            capture_output=True, text=True, env=env, timeout=900)
    report = {"python": ".".join(map(str, sys.version_info[:3])), "expect_gpu": settings["expect_gpu"]}
    if result.returncode != 0:
        last = [line for line in result.stderr.splitlines() if line.strip()][-3:]
        report.update(ok=False, message="TensorFlow failed to run: " + " | ".join(last))
        print(json.dumps(report))
        return 1
    report.update(json.loads(result.stdout.strip().splitlines()[-1]))
    failures = [line.strip() for line in result.stderr.splitlines() if LOAD_FAILURE.search(line)]
    report["failed_libraries"] = sorted({name for line in failures for name in LIBRARY.findall(line)})
    if not report["matmul"]["correct"]:
        report.update(ok=False, message=f"the matrix product on {report['device']} is wrong: {report['matmul']['small_product']}")
    elif settings["expect_gpu"] and not report["gpus"]:
        named = ", ".join(report["failed_libraries"]) or "none named in its log"
        report.update(ok=False, message=(
            "TensorFlow sees no GPU although the host has one and the NVIDIA driver is loaded. Libraries it "
            f"failed to load: {named}. Log: {' | '.join(failures[-3:]) or 'no load errors logged'}. Check that "
            "tensorflow_package is tensorflow[and-cuda] and that the driver meets the CUDA floor (nvidia-smi)."))
    else:
        report.update(ok=True, message=f"TensorFlow {report['tensorflow']['version']} multiplied on {report['device']}")
    print(json.dumps(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
