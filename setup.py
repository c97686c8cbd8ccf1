"""Packaging glue; metadata lives in pyproject.toml.

build_py puts libfasts3 and the header it is declared from into the package being built:
- with PYFASTS3_LIBRARY=/path/to/libfasts3.so, that prebuilt library (`python build.py
  --wheel` sets it, after building the library once with cargo-zigbuild for glibc 2.17);
- otherwise the library is built from source by build.py (needs cargo; without it, build.py
  stops with a message saying what to install, or to use the wheel); with
  PYFASTS3_MANYLINUX=1, by cargo-zigbuild against glibc 2.17, as `python build.py --wheel` does.
Never a library that merely lies in the tree: MANIFEST.in keeps native files out of the sdist
and the package data lists none.

The wheel is tagged py3-none-<platform> here (cffi ABI mode: any CPython 3, one platform);
`python build.py --wheel` then has auditwheel check the library and retag it manylinux.
"""
import importlib.util
import os
import platform
import shutil
import sys
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py
from setuptools.command.bdist_wheel import bdist_wheel

ROOT = Path(__file__).resolve().parent


def native_library() -> Path:
    prebuilt = os.environ.get("PYFASTS3_LIBRARY")
    if prebuilt:
        path = Path(prebuilt)
        if not path.is_file():
            sys.exit(f"PYFASTS3_LIBRARY={prebuilt} does not exist")
        return path
    # Packaging uses the committed header; regenerating it is a dev/CI step.
    # PYFASTS3_MANYLINUX=1: link against glibc 2.17 with cargo-zigbuild, as the published
    # wheels are (needs cargo-zigbuild and ziglang, pinned in requirements-dev.txt).
    arch = platform.machine() if os.environ.get("PYFASTS3_MANYLINUX") == "1" else None
    return _native_build().build_library(arch)


def _native_build():
    """build.py beside this file, loaded by path: `import build` could find PyPA's."""
    spec = importlib.util.spec_from_file_location("pyfasts3_build", ROOT / "build.py")
    native_build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(native_build)
    return native_build


class BuildWithLibrary(build_py):
    def run(self):
        library = native_library()
        super().run()
        if self.editable_mode:
            return  # the source tree is the package: build.py put the library there
        dest = Path(self.build_lib) / "pyfasts3"
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(library, dest / library.name)
        shutil.copy2(ROOT / "include" / "fasts3.h", dest / "fasts3.h")
        _native_build().write_ffi_module(ROOT / "include" / "fasts3.h", dest / "_fasts3_ffi.py")


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
