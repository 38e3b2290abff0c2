"""Choreo's development tasks.

    python3 build.py test      set up the environments and run the whole test suite
    python3 build.py setup     only set up the environments
    python3 build.py demo      set up, then make out/demo.blend, out/demo.mp4, out/demo_report.json
    python3 build.py package [--platform linux-x64|windows-x64|macos-arm64|all] [--no-model]
                               the extension zips: dist/choreo-<version>-<platform>.zip
                               (default: the host's platform; see docs/install.md)

Environments are virtualenvs under the repo root, rebuilt when their
requirements file changes:

    .venv          engine + real bpy 4.5 LTS + pytest (the full suite runs here)
    .venv-bpy42    real bpy 4.2 LTS + numpy + pytest, no engine (Blender tests only)
    .venv-bpy50    real bpy 5.0 + numpy + pytest, no engine (Blender tests only)
    .venv-typecheck  mypy + fake-bpy-module (type checking of blender_addon/ only)

After the full suite, `test` runs the Blender-facing test files (those with a
module-level `pytestmark = pytest.mark.blender`) with `-m blender` under the
other Blender versions, then type-checks blender_addon/ with mypy (mypy.ini).
"""

from __future__ import annotations

import argparse
import email.parser
import fnmatch
import hashlib
import json
import os
import platform as platform_module
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent
REQUIREMENTS = ROOT / "requirements"

ENVIRONMENTS = {
    ".venv": REQUIREMENTS / "dev.txt",
    ".venv-bpy42": REQUIREMENTS / "bpy42.txt",
    ".venv-bpy50": REQUIREMENTS / "bpy50.txt",
    ".venv-typecheck": REQUIREMENTS / "typecheck.txt",
}
# Environments that only run the Blender-facing tests (they have no torch or librosa).
BLENDER_ONLY_ENVIRONMENTS = [".venv-bpy42", ".venv-bpy50"]
_BLENDER_MARK = re.compile(r"^pytestmark\s*=.*\bpytest\.mark\.blender\b", re.MULTILINE)


def _python(env: str) -> Path:
    return ROOT / env / "bin" / "python"


def _requirements_digest(path: Path) -> str:
    """Digest of a requirements file and the files it includes with -r or -c."""
    digest = hashlib.sha256()
    for line in path.read_text().splitlines():
        digest.update(line.encode())
        if line.startswith(("-r ", "-c ")):
            digest.update(_requirements_digest(path.parent / line[3:].strip()).encode())
    return digest.hexdigest()


def ensure_env(env: str, requirements: Path) -> Path:
    """Create or refresh one virtualenv; returns its python."""
    python = _python(env)
    stamp = ROOT / env / ".choreo-requirements"
    want = _requirements_digest(requirements)
    if python.exists() and stamp.exists() and stamp.read_text() == want:
        return python
    print(f"[build] setting up {env} from {requirements.relative_to(ROOT)}", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(ROOT / env)], check=True)
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["-r", str(requirements)], check=True)
    stamp.write_text(want)
    return python


def setup() -> None:
    if sys.version_info[:2] != (3, 11):
        sys.exit("error: Choreo needs Python 3.11 (the bpy wheels are cp311); "
                 f"this is {sys.version.split()[0]}")
    for env, requirements in ENVIRONMENTS.items():
        ensure_env(env, requirements)


def blender_test_files() -> list[str]:
    """Test files marked `pytestmark = pytest.mark.blender` at module level.

    Found by reading the source, not by collecting: the other test files import
    the engine (torch), which the Blender-only environments do not have.
    """
    return [str(path.relative_to(ROOT)) for path in sorted((ROOT / "tests").glob("test_*.py"))
            if _BLENDER_MARK.search(path.read_text(encoding="utf-8"))]


def test(pytest_args: list[str]) -> int:
    setup()
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    cmd = [str(_python(".venv")), "-m", "pytest", "tests", "-q", *pytest_args]
    returncode = subprocess.run(cmd, cwd=ROOT, env=env).returncode
    # Blender tests on other versions: the same files under bpy 4.2 LTS and 5.0.
    files = blender_test_files()
    for venv in BLENDER_ONLY_ENVIRONMENTS if files else []:
        print(f"[build] blender tests under {venv}", flush=True)
        cmd = [str(_python(venv)), "-m", "pytest", *files, "-q", "-m", "blender", *pytest_args]
        returncode = subprocess.run(cmd, cwd=ROOT, env=env).returncode or returncode
    return typecheck() or returncode


def typecheck() -> int:
    """mypy over blender_addon/ against fake-bpy-module, in its own environment."""
    print("[build] typecheck: mypy blender_addon (.venv-typecheck)", flush=True)
    return subprocess.run([str(_python(".venv-typecheck")), "-m", "mypy"], cwd=ROOT).returncode


def demo(args: list[str]) -> int:
    """The README's main job: the bundled song danced by the bundled rig."""
    if sys.version_info[:2] != (3, 11):
        sys.exit(f"error: Choreo needs Python 3.11; this is {sys.version.split()[0]}")
    ensure_env(".venv", ENVIRONMENTS[".venv"])  # the engine and bpy 4.5: all the demo needs
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    cmd = [str(_python(".venv")), "-m", "blender_addon.demo", "--out", str(ROOT / "out"), *args]
    returncode = subprocess.run(cmd, cwd=ROOT, env=env).returncode
    if returncode == 0:
        print("[build] demo written: " + ", ".join(str(ROOT / "out" / name) for name in
                                                  ("demo.blend", "demo.mp4", "demo_report.json")))
    return returncode


# --------------------------------------------------------------------------- package
# Per-platform extension zips (docs/install.md). The zip's root is the extension: the
# files of blender_addon/, engine/, rigs/, the manifest (with `platforms` set), and
# vendor/, the engine's dependencies unpacked from cp311 wheels for that platform.
# The add-on puts vendor/ on the engine process's PYTHONPATH only
# (blender_addon/engine_process.py); Blender's own sys.path never sees it.

DIST = ROOT / "dist"
WHEEL_CACHE = ROOT / ".cache" / "wheels"
VENDOR_PINS = REQUIREMENTS / "vendor.txt"
MODEL = ROOT / "engine" / "assets" / "choreo_dance_gan.safetensors"
#: Blender versions [min, max) whose bundled Python runs cp311 wheels (5.1 moves to 3.13).
BLENDER_FOR_CP311 = ((4, 2, 0), (5, 1, 0))


@dataclass(frozen=True)
class Platform:
    pip_platforms: tuple[str, ...]  # `pip download --platform` values
    wheel_tag: str  # regex: the platform tag every binary wheel must have
    torch: str  # the torch pin for this platform
    unavailable: str = ""  # why no zip can be built for it


PLATFORMS = {
    # Blender needs glibc 2.28 on Linux; PyPI's linux torch is a CUDA build, the +cpu one is not.
    "linux-x64": Platform(tuple(f"manylinux_2_{m}_x86_64" for m in range(28, 16, -1)) + ("manylinux2014_x86_64",),
                          r"manylinux(_2_\d+|2014)_x86_64", "torch==2.13.0+cpu"),
    "windows-x64": Platform(("win_amd64",), r"win_amd64", "torch==2.13.0"),
    # torch 2.13's only macOS wheel is macosx_14_0_arm64: the zip needs macOS 14 (Sonoma) or later.
    "macos-arm64": Platform(("macosx_14_0_arm64",), r"macosx_\d+_\d+_(arm64|universal2)", "torch==2.13.0"),
    "macos-x64": Platform(("macosx_11_0_x86_64",), r"macosx_\d+_\d+_(x86_64|universal2|intel)", "torch==2.13.0",
                          unavailable="PyTorch publishes no macOS x86_64 (Intel) wheels after torch 2.2.2, "
                          "so there is no torch==2.13.0 wheel to vendor (docs/install.md: on an Intel Mac, "
                          "point the preferences' Engine Python at a Python with the engine's dependencies)"),
}

#: What the engine never needs from the vendored packages (fnmatch, relative to vendor/).
PRUNE = (
    "*/__pycache__/*", "*.pyc",  # (keep *.pyi: librosa reads its __init__.pyi at run time)
    "*/tests/*", "*/test/*",  # the packages' own test suites (scipy, numba, llvmlite, torch/test ...)
    "*.dist-info/RECORD",  # hashes of the wheel's files: wrong once pruned, and large for torch
    "torch/include/*", "torch/share/*",  # C++ headers and CMake files: building extensions only
    "torch/bin/*Test", "torch/bin/test_*", "torch/bin/protoc*", "torch/bin/*.pt", "torch/bin/*.ptl",
    "torch/bin/upgrader_models/*",  # C++ test binaries and their data
    "torch/lib/*.lib", "torch/lib/*.a",  # import and static libraries: linking only
    "torch/lib/lib*_test.so", "torch/lib/libaoti_custom_ops.so",
    "torch/lib/libbackend_with_compiler.so",  # libraries of torch's C++ tests
)


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def vendor_pins(platform: str) -> list[str]:
    """`name==version` for everything vendored on ``platform`` (vendor.txt + torch)."""
    pins = [line.split("#")[0].strip() for line in VENDOR_PINS.read_text().splitlines()]
    return [PLATFORMS[platform].torch] + [pin for pin in pins if pin]


def wheel_tags(path: Path) -> tuple[str, str, str, str, str]:
    """(name, version, python tag, abi tag, platform tag) of a wheel file name."""
    parts = path.name[:-len(".whl")].split("-")
    return _norm(parts[0]), parts[1], parts[-3], parts[-2], parts[-1]


def runs_on_cp311(python_tag: str, abi_tag: str) -> bool:
    """Whether a wheel's tags load in CPython 3.11 (pure py3, cp311, or an older abi3)."""
    pythons = python_tag.split(".")
    if abi_tag == "none":
        return any(p in ("py3", "py311", "cp311") for p in pythons)
    if abi_tag == "abi3":
        return any(re.fullmatch(r"cp3(\d+)", p) and int(p[3:]) <= 11 for p in pythons)
    return "cp311" in pythons and abi_tag == "cp311"


def download_wheels(platform: str) -> list[Path]:
    """The pinned cp311 wheels for ``platform``, from .cache/wheels/<platform> (pip download
    fills it; a complete cache builds offline). Checks every wheel's tags."""
    spec, cache = PLATFORMS[platform], WHEEL_CACHE / platform
    pins = vendor_pins(platform)

    def find(pin: str) -> Path | None:
        name, version = pin.split("==")
        return next((w for w in sorted(cache.glob("*.whl"))
                     if wheel_tags(w)[:2] == (_norm(name), version.replace("+", "%2B"))
                     or wheel_tags(w)[:2] == (_norm(name), version)), None)

    missing = [pin for pin in pins if find(pin) is None]
    if missing:
        print(f"[package] {platform}: downloading {len(missing)} wheels into {cache.relative_to(ROOT)}",
              flush=True)
        cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q", "--no-deps",
               "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp",
               "--abi", "cp311", "--abi", "abi3", "--abi", "none", "-d", str(cache)]
        for tag in spec.pip_platforms:
            cmd += ["--platform", tag]
        subprocess.run(cmd + missing, check=True)
    wheels = []
    for pin in pins:
        wheel = find(pin)
        if wheel is None:
            sys.exit(f"error: pip did not fetch a cp311 {platform} wheel for {pin}")
        name, _, python_tag, abi_tag, platform_tag = wheel_tags(wheel)
        if platform_tag != "any" and not any(re.fullmatch(spec.wheel_tag, tag) for tag in platform_tag.split(".")):
            sys.exit(f"error: {wheel.name} is not a {platform} wheel (expected {spec.wheel_tag})")
        if not runs_on_cp311(python_tag, abi_tag):
            sys.exit(f"error: {wheel.name} is not for CPython 3.11")
        if name == "numpy":
            sys.exit("error: numpy must never be vendored (Blender ships numpy 1.26)")
        wheels.append(wheel)
    _check_cpu_torch(next(w for w in wheels if wheel_tags(w)[0] == "torch"))
    return wheels


def _check_cpu_torch(wheel: Path) -> None:
    """A CUDA torch (PyPI's linux wheel) is gigabytes with its nvidia-* libraries: refuse it."""
    with zipfile.ZipFile(wheel) as archive:
        cuda = [n for n in archive.namelist() if re.search(r"torch/lib/[^/]*(torch_cuda|c10_cuda|cudnn|cublas)", n)]
    if cuda:
        sys.exit(f"error: {wheel.name} is a CUDA build ({cuda[0]}); the zips vendor a CPU torch "
                 "(linux: torch==2.13.0+cpu, from the PyTorch CPU index or a local wheel)")


def _pruned(relative: str) -> bool:
    return any(fnmatch.fnmatchcase(relative, pattern) for pattern in PRUNE)


NATIVE_LIBRARIES = (
    "libsndfile (the shared library in _soundfile_data/): LGPL-2.1-or-later, _soundfile_data/COPYING",
    "libsoxr (built into soxr/soxr_ext, source: the soxr 1.1.0 sdist on PyPI): LGPL-2.1-or-later, "
    "soxr-*.dist-info/licenses/",
    "LLVM (in llvmlite/binding/): Apache-2.0 WITH LLVM-exception, llvmlite-*.dist-info/licenses/",
    "OpenBLAS and the GCC Fortran runtime (scipy.libs/, Linux and Windows): BSD-3-Clause and "
    "GPL-3.0 WITH GCC-exception-3.1, scipy-*.dist-info/LICENSE.txt",
    "oneDNN, OpenMP runtimes and the other code torch builds in: torch-*.dist-info/licenses/",
)


def unpack_wheels(wheels: list[Path], vendor: Path) -> None:
    """Unpack the wheels into ``vendor`` without what PRUNE leaves out; a list of the
    bundled licenses goes beside them (vendor/THIRD_PARTY_LICENSES.txt)."""
    notices = ["Third-party packages bundled in vendor/ (the engine's dependencies), with their",
               "licenses as declared in their metadata; the license texts are in each *.dist-info/.", ""]
    notices_tail = ["", "Native libraries inside those packages:", *NATIVE_LIBRARIES]
    nested_licenses: list[str] = []
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            for info in archive.infolist():
                if info.is_dir() or _pruned(info.filename):
                    continue
                target = vendor / info.filename
                if re.match(r"[^/]+\.dist-info/licenses/[^/]+/", info.filename):
                    nested_licenses.append(info.filename)  # merged below: Windows path lengths
                    target = vendor / "nested-licenses" / info.filename
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                if info.external_attr >> 16 & 0o111:
                    target.chmod(0o755)
            meta = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
            fields = email.parser.Parser().parsestr(archive.read(meta).decode("utf-8", "replace"),
                                                    headersonly=True)
        licence = (fields.get("License-Expression") or "").strip()
        licence = licence or " / ".join(c.split(" :: ")[-1] for c in fields.get_all("Classifier") or []
                                        if c.startswith("License ::"))
        licence = licence or (fields.get("License") or "see the license files").splitlines()[0].strip()
        notices.append(f"{fields['Name']} {fields['Version']}: {licence}")
    (vendor / "THIRD_PARTY_LICENSES.txt").write_text("\n".join(notices + notices_tail) + "\n", encoding="utf-8")
    _merge_nested_licenses(vendor, nested_licenses)


def _merge_nested_licenses(vendor: Path, names: list[str]) -> None:
    """torch's wheel nests the licenses of its third-party code up to 180 characters deep,
    past Windows' 260-character path limit under a user's extensions folder. Their texts go
    into one <dist>.dist-info/licenses/THIRD_PARTY_NOTICES.txt, each under its old path."""
    merged: dict[str, list[str]] = {}
    for name in names:
        dist_info, _, rest = name.partition("/licenses/")
        text = (vendor / "nested-licenses" / name).read_text(encoding="utf-8", errors="replace")
        merged.setdefault(dist_info, []).append(f"==== {rest} ====\n\n{text.strip()}\n\n")
    for dist_info, texts in merged.items():
        (vendor / dist_info / "licenses" / "THIRD_PARTY_NOTICES.txt").write_text("".join(texts), encoding="utf-8")
    shutil.rmtree(vendor / "nested-licenses", ignore_errors=True)


#: Linux libraries shipped with their symbol tables (torch's and llvmlite's own builds):
#: `strip --strip-unneeded` saves ~12 MiB zipped and ~130 MiB installed. Only these:
#: stripping libraries that auditwheel patched (scipy.libs/...) breaks their loading.
STRIP = ("torch/lib/libtorch_cpu.so", "torch/lib/libtorch_python.so", "llvmlite/binding/libllvmlite.so")


def strip_binaries(vendor: Path) -> None:
    """Strip STRIP's symbol tables (dynamic symbols stay); a library that no longer
    loads afterwards (checked with ctypes) is put back as it was."""
    strip = shutil.which("strip")
    if strip is None:
        print("[package] no `strip` here: the Linux libraries keep their symbol tables", flush=True)
        return
    for relative in STRIP:
        library = vendor / relative
        backup = library.with_name(library.name + ".orig")
        shutil.copy2(library, backup)
        subprocess.run([strip, "--strip-unneeded", str(library)], check=True)
        load = subprocess.run([sys.executable, "-c", f"import ctypes; ctypes.CDLL({str(library)!r})"],
                              capture_output=True, text=True)
        if load.returncode != 0:
            print(f"[package] {relative} does not load once stripped, kept as it was", flush=True)
            backup.replace(library)
        else:
            backup.unlink()


def stage_extension(stage: Path, platform: str, model: bool) -> None:
    """Everything but vendor/: the add-on at the root, engine/, rigs/, the manifest."""
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.ckpt", "*.npz", "*.tmp")
    shutil.copytree(ROOT / "blender_addon", stage, ignore=skip)
    shutil.copytree(ROOT / "engine", stage / "engine", ignore=skip)
    shutil.copytree(ROOT / "rigs", stage / "rigs", ignore=skip)
    if not model:
        (stage / "engine" / "assets" / MODEL.name).unlink(missing_ok=True)
    (stage / "blender_manifest.toml").write_text(platform_manifest(platform), encoding="utf-8")


def platform_manifest(platform: str) -> str:
    """The manifest with ``platforms = ["<platform>"]`` (one zip per platform)."""
    text = (ROOT / "blender_manifest.toml").read_text(encoding="utf-8")
    text = re.sub(r"(?m)^platforms\s*=.*\n", "", text)
    first_table = re.search(r"(?m)^\[", text)
    at = first_table.start() if first_table else len(text)
    line = f'# one zip per platform: the vendored wheels are {platform} builds\nplatforms = ["{platform}"]\n\n'
    return text[:at] + line + text[at:]


def check_manifest(text: str) -> list[str]:
    """The checks of Blender's `extension validate` (bl_pkg/cli/blender_ext.py, strict),
    plus: blender_version_min 4.2.0 (extensions), a blender_version_max that stops
    before the first Blender whose Python cannot load the cp311 wheels, known SPDX
    licenses, reasons for every permission. Returns the problems (none: valid)."""
    import tomllib  # here, not at the top: `setup` must reach its own Python 3.11 check

    try:
        m = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return [f"not TOML: {exc}"]
    errors = []

    def terse(what: str, value) -> None:
        if not isinstance(value, str) or not value.strip():
            errors.append(f"{what}: a non-empty string expected")
        elif len(value) > 64:
            errors.append(f"{what}: at most 64 characters, found {len(value)}")
        elif value != value.strip() or any(ord(c) < 32 for c in value):
            errors.append(f"{what}: no surrounding spaces or control characters")
        elif not (value[-1].isalnum() or value[-1] in ")]}"):
            errors.append(f"{what}: must not end with punctuation")

    def version(what: str, value) -> tuple[int, ...] | None:
        if not isinstance(value, str) or not re.fullmatch(r"\d+\.\d+\.\d+", value):
            errors.append(f"{what}: three numbers separated by '.' expected, found {value!r}")
            return None
        return tuple(int(x) for x in value.split("."))

    for key in ("schema_version", "id", "version", "name", "tagline", "maintainer", "type", "license",
                "blender_version_min"):
        if key not in m:
            errors.append(f"missing key {key!r}")
    if m.get("schema_version") != "1.0.0":
        errors.append(f"schema_version: '1.0.0' expected, found {m.get('schema_version')!r}")
    ident = m.get("id", "")
    if not (isinstance(ident, str) and ident.isidentifier() and "__" not in ident
            and not ident.startswith("_") and not ident.endswith("_")):
        errors.append(f"id: {ident!r} is not a Python identifier without leading, trailing or double '_'")
    if not re.fullmatch(r"\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?", str(m.get("version", ""))):
        errors.append(f"version: semantic version X.Y.Z expected, found {m.get('version')!r}")
    terse("tagline", m.get("tagline"))
    if m.get("type") not in ("add-on", "theme"):
        errors.append(f"type: 'add-on' or 'theme' expected, found {m.get('type')!r}")
    licenses = m.get("license")
    if not isinstance(licenses, list) or not licenses:
        errors.append("license: a non-empty list expected")
    for item in licenses or []:
        if not (isinstance(item, str) and item.startswith("SPDX:") and item[5:] in SPDX_LICENSES):
            errors.append(f"license: {item!r} is not 'SPDX:<identifier>' of a GPL-compatible license")
    for i, item in enumerate(m.get("copyright", [])):
        year, _, who = str(item).partition(" ")
        if not (re.fullmatch(r"\d+(-\d+)?", year) and who.strip()):
            errors.append(f"copyright[{i}]: 'YEAR Name' or 'YEAR-YEAR Name' expected, found {item!r}")
    low = version("blender_version_min", m.get("blender_version_min"))
    if low is not None and low < BLENDER_FOR_CP311[0]:
        errors.append("blender_version_min: extensions need at least 4.2.0")
    if "blender_version_max" not in m:
        errors.append("blender_version_max: required, the vendored wheels are cp311 (Blender 4.2 to 5.0)")
    else:
        high = version("blender_version_max", m["blender_version_max"])
        if high is not None and not (low or (0,)) < high <= BLENDER_FOR_CP311[1]:
            errors.append(f"blender_version_max: {m['blender_version_max']} is past 5.1.0, where Blender's "
                          "Python can no longer load the cp311 wheels (it is exclusive: 5.1.0 means up to 5.0)")
    permissions = m.get("permissions", {})
    if not isinstance(permissions, dict):
        errors.append("permissions: a table of reasons expected")
    else:
        for key, reason in permissions.items():
            if key not in ("files", "network", "clipboard", "camera", "microphone"):
                errors.append(f"permissions: unknown permission {key!r}")
            terse(f"permissions.{key}", reason)
    for item in m.get("platforms", []):
        if item not in ("windows-x64", "windows-arm64", "macos-x64", "macos-arm64", "linux-x64"):
            errors.append(f"platforms: unknown platform {item!r}")
    return errors


#: SPDX identifiers the Blender extensions platform accepts (GPL-compatible).
SPDX_LICENSES = {"GPL-2.0-or-later", "GPL-3.0-or-later", "LGPL-2.1-or-later", "LGPL-3.0-or-later",
                 "MIT", "MIT-0", "BSD-1-Clause", "BSD-2-Clause", "BSD-3-Clause", "BSL-1.0", "Zlib",
                 "Apache-2.0", "MPL-2.0", "Unlicense", "Pixar", "CC0-1.0", "CC-BY-4.0", "CC-BY-SA-4.0"}


def blender_validators() -> list[tuple[str, Path, Path]]:
    """(environment, python, blender_ext.py) of the bpy wheels set up here."""
    found = []
    for env in (".venv-bpy42", ".venv", ".venv-bpy50"):
        for script in sorted((ROOT / env).glob("lib/python3.11/site-packages/bpy/*/scripts/addons_core/"
                                               "bl_pkg/cli/blender_ext.py")):
            found.append((env, _python(env), script))
    return found


def blender_validate(archive: Path) -> bool:
    """Blender's own validator on the zip, as shipped in each bpy wheel set up here."""
    validators = blender_validators()
    if not validators:
        print("[package] no bpy environment: Blender's validator skipped (run `build.py setup`)")
    ok = True
    for env, python, script in validators:
        result = subprocess.run([str(python), str(script), "validate", str(archive)],
                                capture_output=True, text=True)
        verdict = (result.stdout + result.stderr).strip().replace("\n", "; ")
        print(f"[package] Blender {script.parts[-6]} validator: {verdict}", flush=True)
        ok = ok and result.returncode == 0
    return ok


def zip_folder(folder: Path, archive: Path) -> None:
    """Deflate ``folder`` into ``archive`` (sorted, fixed timestamps: reproducible)."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    tmp = archive.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as out:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), (1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = (0o755 if os.access(path, os.X_OK) else 0o644) << 16
                with open(path, "rb") as src, out.open(info, "w") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
    tmp.replace(archive)


def size_report(archive: Path) -> dict:
    """Sizes per top-level part of the zip (vendor/ by package), compressed and unpacked."""
    parts: dict[str, list[int]] = {}
    longest = ""
    with zipfile.ZipFile(archive) as z:
        for info in z.infolist():
            bits = info.filename.split("/")
            key = "/".join(bits[:2]) if bits[0] == "vendor" and len(bits) > 2 else bits[0] if len(bits) > 1 else "."
            key = re.sub(r"-[^/]*\.dist-info$", " (dist-info)", key)
            entry = parts.setdefault(key, [0, 0, 0])
            entry[0] += info.compress_size
            entry[1] += info.file_size
            entry[2] += 1
            longest = max(longest, info.filename, key=len)
    return {"zip": archive.name, "zip_bytes": archive.stat().st_size,
            "unpacked_bytes": sum(p[1] for p in parts.values()), "files": sum(p[2] for p in parts.values()),
            "longest_path": longest, "parts": dict(sorted(parts.items(), key=lambda kv: -kv[1][0]))}


def print_size_report(report: dict, top: int = 12) -> None:
    mb = 1 / 2**20
    print(f"[package] {report['zip']}: {report['zip_bytes'] * mb:.1f} MiB zipped, "
          f"{report['unpacked_bytes'] * mb:.1f} MiB installed, {report['files']} files, "
          f"longest path {len(report['longest_path'])} characters")
    for name, (packed, unpacked, files) in list(report["parts"].items())[:top]:
        print(f"    {name:<32} {packed * mb:8.1f} MiB zipped {unpacked * mb:8.1f} MiB installed {files:6d} files")


def package(args: list[str]) -> int:
    if sys.version_info < (3, 11):
        sys.exit(f"error: packaging needs Python 3.11 (tomllib); this is {sys.version.split()[0]}")
    parser = argparse.ArgumentParser(prog="build.py package")
    parser.add_argument("--platform", default=host_platform(),
                        choices=[*PLATFORMS, "all"], help="default: this machine's platform")
    parser.add_argument("--no-model", dest="model", action="store_false",
                        help="build without the shipped weights (they are not trained yet)")
    parser.add_argument("--out", type=Path, default=DIST, help="where the zips go (default: dist/)")
    opts = parser.parse_args(args)
    if opts.platform not in (*PLATFORMS, "all"):  # the default on another host
        sys.exit(f"error: there is no {opts.platform} zip; pass --platform ({', '.join(PLATFORMS)} or all)")
    errors = check_manifest((ROOT / "blender_manifest.toml").read_text(encoding="utf-8"))
    if errors:
        sys.exit("error: blender_manifest.toml: " + "; ".join(errors))
    if opts.model and not MODEL.is_file():
        sys.exit(f"error: the shipped weights {MODEL.relative_to(ROOT)} are missing "
                 "(train them, or pass --no-model for a zip without them)")
    platforms = list(PLATFORMS) if opts.platform == "all" else [opts.platform]
    version = re.search(r'(?m)^version\s*=\s*"([^"]+)"', (ROOT / "blender_manifest.toml").read_text())[1]
    failed = 0
    for platform in platforms:
        if PLATFORMS[platform].unavailable:
            print(f"[package] {platform}: not built: {PLATFORMS[platform].unavailable}", file=sys.stderr)
            failed += opts.platform != "all"
            continue
        archive = opts.out / f"choreo-{version}-{platform}.zip"
        build_zip(platform, archive, opts.model)
        report = size_report(archive)
        print_size_report(report)
        archive.with_suffix(".sizes.json").write_text(json.dumps(report, indent=1))
        if check_manifest(platform_manifest(platform)) or not blender_validate(archive):
            failed += 1
    return 1 if failed else 0


def build_zip(platform: str, archive: Path, model: bool = True) -> Path:
    """Build one platform's zip (see the top of this section)."""
    wheels = download_wheels(platform)
    print(f"[package] {platform}: staging {len(wheels)} wheels", flush=True)
    with tempfile.TemporaryDirectory(prefix=f"choreo-{platform}-") as tmp:
        stage = Path(tmp) / "choreo"
        stage_extension(stage, platform, model)
        unpack_wheels(wheels, stage / "vendor")
        if platform.startswith("linux") and sys.platform.startswith("linux"):
            strip_binaries(stage / "vendor")
        print(f"[package] {platform}: writing {archive}", flush=True)
        zip_folder(stage, archive)
    return archive


def host_platform() -> str:
    machine = platform_module.machine().lower()
    arm = machine in ("arm64", "aarch64")
    if sys.platform == "darwin":
        return "macos-arm64" if arm else "macos-x64"
    if sys.platform == "win32":
        return "windows-arm64" if arm else "windows-x64"
    return "linux-arm64" if arm else "linux-x64"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("task", choices=["setup", "test", "demo", "package"])
    parser.add_argument("extra", nargs=argparse.REMAINDER, help="passed on to pytest (or the demo, or package)")
    args = parser.parse_args()
    if args.task == "setup":
        setup()
        return 0
    if args.task == "package":
        return package(args.extra)
    if args.task == "demo":
        return demo(args.extra)
    return test(args.extra)


if __name__ == "__main__":
    sys.exit(main())
