"""Bad input to nvidia_driver and tensorflow: site.yml stops in its preflight, names the value
and the fix, and leaves the host exactly as it was (Debian 13, whose Python is 3.13)."""

from __future__ import annotations

import pytest

from test_access_bad_input import assert_refused_without_change

pytestmark = pytest.mark.integration

CASES = {
    "driver branch not a number": ({"nvidia_driver_branch": "latest"},
                                   ["nvidia_driver_branch must be a three-digit driver branch such as 580 (got 'latest')"]),
    "unknown kernel module": ({"nvidia_driver_kernel_module": "nouveau"}, ["nvidia_driver_kernel_module", "nouveau"]),
    "minimum version not a version": ({"nvidia_driver_min_version": "new"}, ["nvidia_driver_min_version a version such as 535.0 (got 'new')"]),
    "unknown TensorFlow version": ({"tensorflow_version": "2.99.0"},
                                   ["tensorflow_version must be one of 2.20.0, 2.19.0", "(got '2.99.0')"]),
    "unpinned extra package": ({"tensorflow_extra_packages": ["pandas", "numpy==2.1.3"]}, ["not pinned: ['pandas']"]),
    "unpinned data package": ({"tensorflow_data_packages": ["s3fs", "fsspec==2026.9.0"]}, ["not pinned: ['s3fs']"]),
    "unknown TensorFlow package": ({"tensorflow_package": "tensorflow-gpu"}, ["tensorflow_package", "tensorflow-gpu"]),
    "no wheels for this Python": ({"tensorflow_version": "2.19.0"},
                                  ["TensorFlow 2.19.0 has no wheels for Python 3.13", "Set tensorflow_version to one that supports Python 3.13: 2.20.0"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_gpu_stack_input_stops_before_any_change(case, untouched_debian13_host, tmp_path):
    extra, expected = CASES[case]
    assert_refused_without_change(untouched_debian13_host, untouched_debian13_host.inventory(tmp_path / "hosts.yml"), extra, expected)
