"""libapmnet inside the package: setuptools-rust runs cargo on the crate and the wheel carries
apmnet/libapmnet.so, which the package loads with ctypes (no Python extension module: the wheel is
tagged py3-none-<platform>).

The crate is ``rust/`` in an sdist, else the checkout's root (APMNET_CRATE_DIR, set by
build_support/staged_backend.py, names it when the build runs in a copy of this folder). cargo is
taken from PATH, else from ~/.cargo/bin (where rustup puts it), as the Makefile does. Set
CARGO_TARGET_DIR to keep cargo's build between runs; by default it goes to a temporary folder.
"""

import os
import shutil

from setuptools import setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools_rust import Binding, RustExtension, Strip
from setuptools_rust.build import build_rust


def crate_manifest():
    for folder in (os.environ.get("APMNET_CRATE_DIR"), "rust", os.path.join("..", "..")):
        if folder and os.path.isfile(os.path.join(folder, "Cargo.toml")):
            return os.path.abspath(os.path.join(folder, "Cargo.toml"))
    raise SystemExit("apmnet: the Rust crate is missing (no rust/Cargo.toml, nor ../../Cargo.toml)")


cargo_bin = os.path.join(os.path.expanduser("~"), ".cargo", "bin")
if shutil.which("cargo") is None and os.path.isfile(os.path.join(cargo_bin, "cargo")):
    os.environ["PATH"] = cargo_bin + os.pathsep + os.environ.get("PATH", "")


class BuildRust(build_rust):
    """Installs the cdylib as apmnet/libapmnet.so, the name the package looks for, rather than as
    an extension module (libapmnet.cpython-3XX-....so)."""

    def get_dylib_ext_path(self, ext, target_fname):
        return os.path.join(os.path.dirname(super().get_dylib_ext_path(ext, target_fname)),
                            "libapmnet.so")


class BdistWheel(bdist_wheel):
    """One wheel for every Python 3: the library is loaded with ctypes, not imported."""

    def get_tag(self):
        _, _, platform = super().get_tag()
        return "py3", "none", platform


setup(
    rust_extensions=[RustExtension("apmnet.libapmnet", crate_manifest(), binding=Binding.NoBinding,
                                   cargo_manifest_args=["--locked"], debug=False,
                                   strip=Strip.Debug)],
    cmdclass={"build_rust": BuildRust, "bdist_wheel": BdistWheel},
    zip_safe=False,
)
