"""The installed package type-checks: mypy over it, every function annotated (skipped without mypy;
the test venv has it)."""

import pathlib
import subprocess
import sys

import pytest

import apmnet


def test_the_package_is_annotated_and_type_checks(tmp_path):
    pytest.importorskip("mypy")
    package = pathlib.Path(apmnet.__file__).resolve().parent
    assert (package / "py.typed").is_file()
    done = subprocess.run([sys.executable, "-m", "mypy", "--disallow-untyped-defs", "--no-incremental",
                           "--cache-dir", str(tmp_path / "cache"), "-p", "apmnet"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
