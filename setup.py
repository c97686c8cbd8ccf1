"""Packaging glue: build libfasts3 (via build.py) before collecting the package, and mark
the wheel as platform-specific because it carries a native library. Metadata lives in
pyproject.toml."""
import subprocess
import sys
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py
from setuptools.command.bdist_wheel import bdist_wheel

ROOT = Path(__file__).resolve().parent


class BuildWithLibrary(build_py):
    def run(self):
        # --no-header: packaging uses the committed header; regenerating is a dev/CI step.
        subprocess.run([sys.executable, str(ROOT / "build.py"), "--no-header"], check=True, cwd=ROOT)
        super().run()


class PlatformWheel(bdist_wheel):
    def finalize_options(self):
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self):
        # Pure-Python over a C ABI (cffi ABI mode): any CPython 3, this platform.
        _, _, plat = super().get_tag()
        return "py3", "none", plat


class BinaryDistribution(Distribution):
    """Carries a native library: install into platlib, not purelib."""

    def has_ext_modules(self):
        return True


setup(distclass=BinaryDistribution, cmdclass={"build_py": BuildWithLibrary, "bdist_wheel": PlatformWheel})
