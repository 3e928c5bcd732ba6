"""Shared fixtures: every backend-aware test runs on numpy and, when a GPU is present, on cupy."""
import os

import pytest
from hypothesis import HealthCheck, settings

from tinygrad_mm import backend

settings.register_profile("default", deadline=None, max_examples=40,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", deadline=None, max_examples=40, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "default")

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(
        not backend.cuda_available(), reason=f"no GPU: {backend.CUPY_UNAVAILABLE_REASON}")),
]


@pytest.fixture(params=DEVICES)
def device(request):
    """The device name ("cpu", "cuda") a test runs on."""
    return request.param
