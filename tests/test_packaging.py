"""Packaging (issue 11): the sdist a user downloads can build, a build without cargo says what
to do, and the wheel `python build.py --wheel` makes installs into a fresh venv on a machine
without cargo and runs the README quickstart.

The wheel test needs the wheel: ./dev.sh test builds it and passes its path in PYFASTS3_WHEEL.
Run alone: `python build.py --wheel && PYFASTS3_WHEEL=$(ls dist/*manylinux*x86_64.whl)
python -m pytest -q tests/test_packaging.py`. Under CI (CI=true) a missing wheel is a failure.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import textwrap
import uuid
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# A PATH with the system's tools but no Rust toolchain (rustup puts cargo in ~/.cargo/bin).
PATH_WITHOUT_CARGO = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NATIVE_SUFFIXES = (".so", ".dylib", ".dll")


def env_without_cargo(**extra: str) -> dict:
    assert shutil.which("cargo", path=PATH_WITHOUT_CARGO) is None, \
        f"cargo is on {PATH_WITHOUT_CARGO}: this test needs a PATH without it"
    env = {"PATH": PATH_WITHOUT_CARGO, "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8"}
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST", "PIP_CERT", "SSL_CERT_FILE"):
        if name in os.environ:
            env[name] = os.environ[name]
    env.update(extra)
    return env


def run(cmd, timeout: float = 600, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kw)


# ---- a source build without cargo -----------------------------------------------------------

def test_build_without_cargo_says_what_to_install():
    proc = run([sys.executable, ROOT / "build.py", "--no-header"], cwd=ROOT, env=env_without_cargo())
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Traceback" not in output and "FileNotFoundError" not in output, output
    assert "cargo" in output and "rustup" in output, output
    assert "pip install --only-binary" in output, output  # the way out without a compiler


# ---- the sdist ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sdist(tmp_path_factory) -> Path:
    """An sdist made the way PyPA build makes it (the issue's reproduction), from a cwd
    outside the tree (`python -m build` run in the tree would import our build.py)."""
    out = tmp_path_factory.mktemp("sdist")
    proc = run([sys.executable, "-m", "build", "--sdist", "--outdir", out, ROOT], cwd=out)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (path,) = out.glob("pyfasts3-*.tar.gz")
    return path


def test_sdist_has_what_a_source_build_needs(sdist):
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for needed in ("Cargo.toml", "Cargo.lock", "build.py", "cbindgen.toml", "setup.py", "pyproject.toml",
                   "rust/lib.rs", "rust/ffi/mod.rs", "rust/engine/Cargo.toml", "rust/engine/mod.rs",
                   "include/fasts3.h",
                   "pyfasts3/__init__.py", "pyfasts3/_lowlevel.py"):
        assert needed in names, f"{needed} missing from {sdist.name}"


def test_sdist_is_a_workspace_cargo_can_read(sdist, tmp_path):
    """Both crates of the workspace come with the sdist: cargo resolves it from the unpacked
    archive (a member missing from it fails here, not in a user's source build)."""
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp_path, filter="data")
    (tree,) = tmp_path.iterdir()
    packages = {p["name"]: p for p in cargo_metadata(tree)["packages"]}
    assert set(packages) == {"fasts3", "fasts3-engine"}, sorted(packages)


def test_sdist_carries_no_native_library(sdist):
    # The tree has one (the build put it there): it must not leak into the source archive.
    assert any((ROOT / "pyfasts3" / f"libfasts3{s}").exists() for s in NATIVE_SUFFIXES), \
        "build the library first (python build.py): this test checks a built tree's sdist"
    with tarfile.open(sdist) as tar:
        native = [n for n in tar.getnames() if n.endswith(NATIVE_SUFFIXES) or "target/" in n]
    assert native == []


def test_sdist_install_without_cargo_fails_with_a_clear_message(sdist, tmp_path):
    proc = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
                "-w", tmp_path, sdist], cwd=tmp_path, env=env_without_cargo())
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "FileNotFoundError" not in output, output[-3000:]
    assert "pyfasts3 needs cargo" in output and "rustup" in output, output[-3000:]


# ---- two crates in one workspace (issue 10) ------------------------------------------------

def cargo_exe() -> str:
    exe = shutil.which("cargo") or str(Path.home() / ".cargo" / "bin" / "cargo")
    assert Path(exe).is_file(), "these tests read the workspace with cargo: put it on PATH"
    return exe


def cargo_metadata(tree: Path = ROOT) -> dict:
    proc = run([cargo_exe(), "metadata", "--format-version", "1", "--no-deps", "--offline"], cwd=tree)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_engine_is_a_crate_of_its_own_under_the_c_abi_crate():
    meta = cargo_metadata()
    packages = {p["name"]: p for p in meta["packages"]}
    assert set(packages) == {"fasts3", "fasts3-engine"}, sorted(packages)
    abi, engine = packages["fasts3"], packages["fasts3-engine"]
    # The root manifest stays the C ABI crate: the library build.py, setup.py and the wheel
    # expect (libfasts3, a cdylib).
    assert Path(abi["manifest_path"]) == ROOT / "Cargo.toml"
    (abi_lib,) = [t for t in abi["targets"] if "lib" in t["kind"] or "cdylib" in t["kind"]]
    assert abi_lib["name"] == "fasts3" and "cdylib" in abi_lib["crate_types"], abi_lib
    # The engine: rust/engine, a plain Rust library (no cdylib/staticlib: no C library).
    assert Path(engine["manifest_path"]) == ROOT / "rust" / "engine" / "Cargo.toml"
    (engine_lib,) = [t for t in engine["targets"] if t["kind"] != ["test"]]
    assert engine_lib["crate_types"] == ["lib"], engine_lib
    # The C ABI crate sits on the engine and keeps only what rust/ffi itself uses; the engine
    # knows nothing of it.
    normal = {d["name"] for d in abi["dependencies"] if d["kind"] is None}
    assert normal == {"fasts3-engine", "libc", "tokio"}, sorted(normal)
    assert "fasts3" not in {d["name"] for d in engine["dependencies"]}
    # A plain `cargo test` / `cargo clippy` at the root covers both crates.
    assert set(meta["workspace_default_members"]) == {abi["id"], engine["id"]}


def test_engine_has_no_c_abi():
    """Exports, C layouts and C strings belong to rust/ffi; the engine is Rust for Rust callers."""
    c_abi = ('extern "C"', "no_mangle", "export_name", "repr(C)", "CStr", "c_char")
    found = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
             for path in sorted((ROOT / "rust" / "engine").rglob("*.rs"))
             for n, line in enumerate(path.read_text().splitlines(), 1)
             if not line.lstrip().startswith("//") and any(mark in line for mark in c_abi)]
    assert found == [], "\n".join(found)


def test_engine_packages_on_its_own(tmp_path):
    """`cargo package` of the engine: its sources and a manifest with the workspace's pins
    written in (what crates.io would get), nothing from outside rust/engine."""
    proc = run([cargo_exe(), "package", "-p", "fasts3-engine", "--list", "--offline", "--allow-dirty"], cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    files = set(proc.stdout.split())
    assert {"Cargo.toml", "Cargo.toml.orig", "mod.rs", "get.rs", "http/mod.rs", "fake_s3.rs"} <= files, sorted(files)
    assert not any(f.startswith(("..", "/", "ffi/")) for f in files), sorted(files)


def test_ci_runs_and_lints_both_crates():
    """dev.sh (what .ci/run runs) names the whole workspace in every cargo test/clippy/check,
    so the engine's tests and lints cannot drop out by a change of default members."""
    commands = [line.strip() for line in (ROOT / "dev.sh").read_text().splitlines()
                if line.strip().startswith(("cargo ", "cargo-zigbuild "))
                and any(f" {verb} " in line for verb in ("test", "clippy", "check"))]
    assert len(commands) == 3, commands
    assert all("--workspace" in c for c in commands), commands


# ---- the wheel in a fresh venv without cargo ----------------------------------------------

QUICKSTART = textwrap.dedent('''
    # The README's Python quickstart, against the server the test started, checking bytes.
    import json, os, shutil, sys
    import numpy as np
    import pyfasts3

    cfg = json.loads(open(sys.argv[1]).read())
    assert shutil.which("cargo") is None, "cargo is on PATH"
    here = os.path.dirname(pyfasts3.__file__)
    assert here.startswith(sys.prefix), f"pyfasts3 imported from {here}, not from the venv"
    b = cfg["bucket"]
    big, small = bytes.fromhex(cfg["big"]), bytes.fromhex(cfg["small"])

    # Module-level functions: the default client, configured from the environment.
    arr = np.empty(len(big), dtype=np.uint8)
    n = pyfasts3.get_into(arr, f"{b}/data/shard-0001.bin")
    assert n == len(big) and arr.tobytes() == big
    data = pyfasts3.get(f"s3://{b}/data/small.json")
    assert data.tobytes() == small
    parts = pyfasts3.get_many([f"{b}/data/small.json", f"{b}/data/shard-0001.bin"])
    assert [p.tobytes() for p in parts] == [small, big]
    info = pyfasts3.head(f"{b}/data/shard-0001.bin")
    assert info.size == len(big)
    keys = list(pyfasts3.list_keys(f"{b}/data/", delimiter="/"))
    assert sorted(keys) == [f"data/shard-0001.bin", "data/small.json"], keys

    # An explicit client.
    with pyfasts3.Client(cfg["endpoint"], access_key_id=cfg["key"], secret_access_key=cfg["secret"],
                         region=cfg["region"]) as client:
        header = np.empty((64, 1024), dtype=np.float32)
        client.get_into(header, f"{b}/data/shard-0001.bin", offset=4096)
        assert header.tobytes() == big[4096:4096 + header.nbytes]
        listed = {o.key: o.size for o in client.list_objects(f"{b}/data/")}
        assert listed == {"data/shard-0001.bin": len(big), "data/small.json": len(small)}, listed
    print("quickstart ok", pyfasts3.__file__)
''')


def wheel_path() -> Path:
    given = os.environ.get("PYFASTS3_WHEEL")
    if not given:
        if os.environ.get("CI"):
            pytest.fail("PYFASTS3_WHEEL is not set: ./dev.sh test builds the wheel and sets it")
        pytest.skip("set PYFASTS3_WHEEL to a wheel built by `python build.py --wheel` (./dev.sh test does)")
    path = Path(given).resolve()
    assert path.is_file(), f"PYFASTS3_WHEEL={given} does not exist"
    return path


def test_wheel_is_manylinux2014_with_a_stripped_library():
    wheel = wheel_path()
    arch = platform.machine()
    tags = set(wheel.name[:-len(".whl")].split("-")[-1].split("."))
    assert wheel.name.startswith("pyfasts3-") and "-py3-none-" in wheel.name, wheel.name
    assert tags == {f"manylinux_2_17_{arch}", f"manylinux2014_{arch}"}, wheel.name
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        assert "pyfasts3/libfasts3.so" in names and "pyfasts3/fasts3.h" in names, names
        lib = zf.read("pyfasts3/libfasts3.so")
        wheel_meta = zf.read(next(n for n in names if n.endswith(".dist-info/WHEEL"))).decode()
    assert "Root-Is-Purelib: false" in wheel_meta
    assert f"Tag: py3-none-manylinux_2_17_{arch}" in wheel_meta, wheel_meta
    # Stripped: no .symtab (the static symbol table); the dynamic exports stay in .dynsym.
    from elftools.elf.elffile import ELFFile
    import io

    elf = ELFFile(io.BytesIO(lib))
    sections = {s.name for s in elf.iter_sections()}
    assert ".symtab" not in sections and ".debug_info" not in sections, sorted(sections)
    exported = {s.name for s in elf.get_section_by_name(".dynsym").iter_symbols()}
    assert "fasts3_abi_version" in exported and "fasts3_get_into" in exported
    # Loads on glibc 2.17: no symbol version newer than GLIBC_2.17 is required.
    needed = set()
    for section in elf.iter_sections():
        if section.name == ".gnu.version_r":
            for _, aux in section.iter_versions():
                needed.update(a.name for a in aux)
    glibc = [tuple(map(int, v.split("_")[1].split("."))) for v in needed if v.startswith("GLIBC_")]
    assert glibc and max(glibc) <= (2, 17), sorted(needed)


def wheel_built_from_the_sdist(sdist: Path, out: Path) -> Path:
    """`pip wheel` of the sdist: cargo-zigbuild compiles both crates from the sdist's sources.
    Into a copy of the release builds of CARGO_TARGET_DIR: the third-party crates compiled
    there are reused, and the shared directory's fingerprints keep naming this tree's sources
    (a build of another tree of the same workspace into it would leave them naming that tree,
    and the next `python build.py` here could take a changed source for up to date)."""
    shared = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    target = out / "target"
    for sub in ("release", f"{platform.machine()}-unknown-linux-gnu/release"):
        if (shared / sub).is_dir():
            shutil.copytree(shared / sub, target / sub, symlinks=True)
            # Forget the workspace's own crates: their fingerprints name the sources of the
            # tree that built them, which cargo would find unchanged and not compile these.
            for fingerprint in (target / sub / ".fingerprint").glob("fasts3-*"):
                shutil.rmtree(fingerprint)
    # cargo-zigbuild is found on PATH, and runs the zig of this Python's ziglang (pip's
    # isolated build environment has neither).
    import ziglang

    env = {**os.environ, "PYFASTS3_MANYLINUX": "1", "CARGO_TARGET_DIR": str(target),
           "CARGO_ZIGBUILD_ZIG_PATH": str(Path(ziglang.__file__).parent / "zig")}
    proc = run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--disable-pip-version-check", "-w", out, sdist],
               cwd=out, env=env, timeout=1800)
    # cargo's own error lines, not only the tail of pip's traceback.
    errors = [line for line in (proc.stdout + proc.stderr).splitlines() if "error" in line.lower()]
    assert proc.returncode == 0, "\n".join(errors[:60]) + "\n" + proc.stderr[-2000:]
    assert "Compiling fasts3-engine" in proc.stdout + proc.stderr, "the sdist's crates were not compiled"
    (wheel,) = out.glob("pyfasts3-*.whl")
    return wheel


@pytest.fixture(scope="module", params=["wheel", "sdist"], ids=["built-wheel", "wheel-from-sdist"])
def wheel_venv(request, tmp_path_factory) -> Path:
    """A fresh venv with a wheel installed by a pip that has no cargo on PATH: the wheel
    `python build.py --wheel` made, or one `pip wheel` built from the sdist with cargo."""
    if request.param == "wheel":
        wheel = wheel_path()
    else:
        # Built once per session: pytest may set this fixture up again for another server lane.
        out = tmp_path_factory.getbasetemp() / "wheel-from-sdist"
        built = list(out.glob("pyfasts3-*.whl"))
        if not built:
            out.mkdir(exist_ok=True)
            built = [wheel_built_from_the_sdist(request.getfixturevalue("sdist"), out)]
        wheel = built[0]
    venv = tmp_path_factory.mktemp("wheel-venv") / "venv"
    proc = run([sys.executable, "-m", "venv", venv], env=env_without_cargo())
    assert proc.returncode == 0, proc.stderr
    python = venv / "bin" / "python"
    proc = run([python, "-m", "pip", "install", "--disable-pip-version-check", "--only-binary", ":all:",
                wheel], env=env_without_cargo(), cwd=venv)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return python


def test_wheel_runs_the_quickstart_in_a_venv_without_cargo(wheel_venv, server, s3, tmp_path):
    bucket = f"w-{uuid.uuid4().hex[:20]}"
    s3.create_bucket(Bucket=bucket)
    big = os.urandom(3 * 1024 * 1024 + 7)
    small = json.dumps({"hello": "wheel"}).encode()
    s3.put_object(Bucket=bucket, Key="data/shard-0001.bin", Body=big)
    s3.put_object(Bucket=bucket, Key="data/small.json", Body=small)
    cfg = {"bucket": bucket, "big": big.hex(), "small": small.hex(), "endpoint": server.endpoint_url,
           "key": server.access_key_id, "secret": server.secret_access_key, "region": server.region}
    script = tmp_path / "quickstart.py"
    script.write_text(QUICKSTART)
    # cwd outside the tree, so `import pyfasts3` can only find the installed wheel.
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    proc = run([wheel_venv, script, tmp_path / "cfg.json"], cwd=tmp_path, env=env_without_cargo(**server.env()))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "quickstart ok" in proc.stdout
    # The wheel's console script (pyfasts3 = pyfasts3.cli:main), from the venv's bin.
    cli = wheel_venv.parent / "pyfasts3"
    proc = subprocess.run([str(cli), "cat", f"s3://{bucket}/data/shard-0001.bin"], capture_output=True,
                          timeout=120, cwd=tmp_path, env=env_without_cargo(**server.env()))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout == big


def test_loader_imports_declarations_generated_from_the_header(tmp_path):
    """cffi out-of-line ABI mode: the loader imports the declarations build.py generated from
    include/fasts3.h (nothing is parsed at import), and they are the header's current ones."""
    import importlib.util

    import pyfasts3._fasts3_ffi
    import pyfasts3._lowlevel

    assert pyfasts3._lowlevel.ffi is pyfasts3._fasts3_ffi.ffi
    spec = importlib.util.spec_from_file_location("pyfasts3_build_under_test", ROOT / "build.py")
    native_build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(native_build)
    fresh = tmp_path / "_fasts3_ffi.py"
    native_build.write_ffi_module(ROOT / "include" / "fasts3.h", fresh)
    assert fresh.read_text() == (ROOT / "pyfasts3" / "_fasts3_ffi.py").read_text(), \
        "pyfasts3/_fasts3_ffi.py is stale: run `python build.py`"
