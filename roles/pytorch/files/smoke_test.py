#!/usr/bin/env python3
"""PyTorch smoke test, run with the PyTorch virtualenv's Python by the pytorch role.

Imports torch, lists the CUDA devices it sees, checks a small matrix product exactly and times an
N x N multiply on the first GPU (or the CPU). torch runs in a child process, so an import that
crashes (a missing CUDA library) is reported with its last lines instead of killing the test.
Usage: smoke_test.py '{"expect_gpu": bool, "size": N}'. Prints one JSON object; exits 1 when the
test fails, with "message" saying why and what to do.
"""
import json
import subprocess
import sys

INNER = r"""
import json, sys, time
started = time.perf_counter()
import torch
imported = time.perf_counter() - started
size = int(sys.argv[1])
gpus = [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
device = torch.device("cuda:0" if gpus else "cpu")
small = (torch.tensor([[1.0, 2.0], [3.0, 4.0]], device=device) @ torch.tensor([[5.0, 6.0], [7.0, 8.0]], device=device)).cpu().tolist()
a = torch.ones((size, size), device=device)
b = torch.full((size, size), 2.0, device=device)
(a @ b).sum().item()  # warm-up: the first product loads the BLAS kernels
if gpus:
    torch.cuda.synchronize()
timed = time.perf_counter()
product = a @ b
if gpus:
    torch.cuda.synchronize()
seconds = time.perf_counter() - timed
cudnn = torch.backends.cudnn.version() if gpus and torch.backends.cudnn.is_available() else None
print(json.dumps({
    "pytorch": {"version": torch.__version__, "cuda_build": torch.version.cuda or "", "cuda_available": bool(gpus),
                "cudnn": str(cudnn) if cudnn else "",
                "blas": str(torch.backends.cuda.preferred_blas_library()).rsplit(".", 1)[-1] if gpus else "cpu"},
    "gpus": gpus, "device": str(device), "import_seconds": round(imported, 2),
    "matmul": {"size": size, "seconds": round(seconds, 4),
               "gflops": round(2 * size ** 3 / seconds / 1e9, 1) if seconds else None,
               "small_product": small, "expected_small_product": [[19.0, 22.0], [43.0, 50.0]],
               "correct": small == [[19.0, 22.0], [43.0, 50.0]] and bool((product == 2.0 * size).all().item())},
}))
"""


def main() -> int:
    settings = json.loads(sys.argv[1])
    result = subprocess.run([sys.executable, "-c", INNER, str(settings["size"])],
                            capture_output=True, text=True, timeout=900, check=False)
    report = {"python": ".".join(map(str, sys.version_info[:3])), "expect_gpu": settings["expect_gpu"]}
    if result.returncode != 0:
        last = [line for line in result.stderr.splitlines() if line.strip()][-3:]
        report.update(ok=False, message="PyTorch failed to run: " + " | ".join(last))
        print(json.dumps(report))
        return 1
    report.update(json.loads(result.stdout.strip().splitlines()[-1]))
    if not report["matmul"]["correct"]:
        report.update(ok=False, message=f"the matrix product on {report['device']} is wrong: {report['matmul']['small_product']}")
    elif settings["expect_gpu"] and not report["gpus"]:
        report.update(ok=False, message=(
            f"PyTorch {report['pytorch']['version']} sees no GPU although the host has one and the NVIDIA driver is loaded. "
            f"It is built for CUDA {report['pytorch']['cuda_build'] or 'none (a CPU build)'}: check that the driver meets "
            "that CUDA's floor (nvidia-smi) and that pytorch_version is auto or a release the driver runs."))
    else:
        report.update(ok=True, message=f"PyTorch {report['pytorch']['version']} multiplied on {report['device']}")
    print(json.dumps(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
