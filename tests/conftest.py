"""Shared fixtures: the data files (from $DIGITREC_MNIST / $DIGITREC_USPS or ../shared/data)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED_DATA = ROOT.parent / "shared" / "data"


def _data_file(env: str, name: str) -> Path | None:
    path = Path(os.environ[env]) if os.environ.get(env) else SHARED_DATA / name
    return path if path.is_file() else None


@pytest.fixture(scope="session")
def mnist_path() -> Path:
    path = _data_file("DIGITREC_MNIST", "mnist.npz")
    if path is None:
        pytest.skip("MNIST not found: set DIGITREC_MNIST to mnist.npz")
    return path


@pytest.fixture(scope="session")
def usps_path() -> Path:
    path = _data_file("DIGITREC_USPS", "usps.npz")
    if path is None:
        pytest.skip("USPS not found: set DIGITREC_USPS to usps.npz")
    return path


@pytest.fixture(scope="session")
def mnist(mnist_path):
    from digitrec.data import load_mnist

    return load_mnist(mnist_path)
