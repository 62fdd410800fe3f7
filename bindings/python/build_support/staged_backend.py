"""The build backend: setuptools.build_meta (with setuptools-rust, see setup.py), run in a temporary
copy of this folder, so that a build writes nothing into the source tree: no build/, no
*.egg-info, no cargo target/ (CARGO_TARGET_DIR, unless set, is a folder of that copy too).

From a checkout, the crate stays where it is (APMNET_CRATE_DIR tells setup.py where); an sdist
carries a copy of it in rust/. Editable installs are in-tree by nature and are left to setuptools.
"""

import contextlib
import os
import shutil
import tempfile

from setuptools import build_meta as _setuptools

__all__ = ["build_sdist", "build_wheel", "get_requires_for_build_sdist",
           "get_requires_for_build_wheel", "prepare_metadata_for_build_wheel", "build_editable",
           "get_requires_for_build_editable", "prepare_metadata_for_build_editable"]

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # bindings/python
# What cargo needs to build the library (Cargo.toml names no file outside these).
CRATE_FILES = ("Cargo.toml", "Cargo.lock", "build.rs", "cbindgen.toml", "src")
# What the package's build needs from this folder (tests and build output are left behind).
PACKAGE_FILES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "apmnet",
                 "build_support", "rust")


def _crate_dir():
    if os.path.isfile(os.path.join(HERE, "rust", "Cargo.toml")):
        return os.path.join(HERE, "rust")  # an unpacked sdist
    root = os.path.dirname(os.path.dirname(HERE))
    if os.path.isfile(os.path.join(root, "Cargo.toml")):
        return root  # a checkout
    raise RuntimeError("apmnet: the Rust crate is missing (no rust/Cargo.toml, nor ../../Cargo.toml)")


def _copy(names, source, target):
    ignore = shutil.ignore_patterns("__pycache__", "*.py[cod]", "target", "build", "*.egg-info")
    for name in names:
        path = os.path.join(source, name)
        if os.path.isdir(path):
            shutil.copytree(path, os.path.join(target, name), ignore=ignore)
        elif os.path.isfile(path):
            shutil.copy2(path, os.path.join(target, name))


@contextlib.contextmanager
def _staged(with_crate=False):
    """Runs the body in a fresh copy of this folder (with the crate in rust/ for an sdist)."""
    previous_dir = os.getcwd()
    previous_env = {name: os.environ.get(name) for name in ("APMNET_CRATE_DIR", "CARGO_TARGET_DIR")}
    with tempfile.TemporaryDirectory(prefix="apmnet-build-") as scratch:
        tree = os.path.join(scratch, "apmnet")
        os.mkdir(tree)
        _copy(PACKAGE_FILES, HERE, tree)
        crate = _crate_dir()
        if with_crate and not os.path.isdir(os.path.join(tree, "rust")):
            os.mkdir(os.path.join(tree, "rust"))
            _copy(CRATE_FILES, crate, os.path.join(tree, "rust"))
        os.environ["APMNET_CRATE_DIR"] = crate
        if not os.environ.get("CARGO_TARGET_DIR"):
            os.environ["CARGO_TARGET_DIR"] = os.path.join(scratch, "cargo-target")
        os.chdir(tree)
        try:
            yield
        finally:
            os.chdir(previous_dir)
            for name, value in previous_env.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _absolute(directory):
    return os.path.abspath(directory) if directory is not None else None


def get_requires_for_build_wheel(config_settings=None):
    with _staged():
        return _setuptools.get_requires_for_build_wheel(config_settings)


def get_requires_for_build_sdist(config_settings=None):
    with _staged():
        return _setuptools.get_requires_for_build_sdist(config_settings)


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    metadata_directory = _absolute(metadata_directory)
    with _staged():
        return _setuptools.prepare_metadata_for_build_wheel(metadata_directory, config_settings)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    wheel_directory, metadata_directory = _absolute(wheel_directory), _absolute(metadata_directory)
    with _staged():
        return _setuptools.build_wheel(wheel_directory, config_settings, metadata_directory)


def build_sdist(sdist_directory, config_settings=None):
    sdist_directory = _absolute(sdist_directory)
    with _staged(with_crate=True):
        return _setuptools.build_sdist(sdist_directory, config_settings)


get_requires_for_build_editable = _setuptools.get_requires_for_build_editable
prepare_metadata_for_build_editable = _setuptools.prepare_metadata_for_build_editable
build_editable = _setuptools.build_editable
