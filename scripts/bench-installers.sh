#!/bin/sh
# pip against uv on one machine, empty caches both, one after the other (docs/performance.md);
# uv as gpubox runs it (gpubox.workstation.pip_install): system CA store, bytecode compiled as pip does.
# Run as root on a test host or workstation: sh bench-installers.sh [REQUIREMENT...]
# (default: the pytorch role's requirements). Installs uv into /opt/gpubox/tools if missing.
set -eu
[ $# -gt 0 ] || set -- torch==2.15.0 numpy==2.2.6 s3fs==2026.9.0 fsspec==2026.9.0
UV_VERSION=0.13.9
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
[ -x /opt/gpubox/tools/bin/uv ] || { python3 -m venv /opt/gpubox/tools && /opt/gpubox/tools/bin/pip install -q "uv==$UV_VERSION"; }
now() { python3 -c 'import time; print(time.monotonic())'; }
python3 -m venv "$work/pip"
python3 -m venv --without-pip "$work/uv"
start=$(now); "$work/pip/bin/pip" install --no-cache-dir -q --disable-pip-version-check "$@"; end=$(now)
echo "pip, empty cache: $(python3 -c "print(round($end - $start, 1))") s, $(du -sh "$work/pip" | cut -f1)"
start=$(now); UV_CACHE_DIR="$work/cache" /opt/gpubox/tools/bin/uv pip install -q --system-certs --compile-bytecode --python "$work/uv/bin/python" "$@"; end=$(now)
echo "uv, empty cache: $(python3 -c "print(round($end - $start, 1))") s, $(du -sh "$work/uv" | cut -f1)"
rm -rf "$work/uv"; python3 -m venv --without-pip "$work/uv"
start=$(now); UV_CACHE_DIR="$work/cache" /opt/gpubox/tools/bin/uv pip install -q --system-certs --compile-bytecode --python "$work/uv/bin/python" "$@"; end=$(now)
echo "uv, warm cache: $(python3 -c "print(round($end - $start, 1))") s"
