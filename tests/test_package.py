"""The extension zips of `python3 build.py package` (docs/install.md).

The fast tests check the manifest rules, the pins and that every import of the
engine is vendored. The slow ones build the zips, check their layout and wheel
tags, run Blender's own validator on them, install the linux-x64 zip into real
bpy 4.2, 4.5 and 5.0 with ``extensions.package_install_files`` (each into its
own BLENDER_USER_RESOURCES, in a fresh process: tests/installed_extension.py)
and, under 4.2 and 5.0, whose environments have no torch or librosa, generate a
dance with the shared song onto a Rigify rig through the installed extension.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_SONG = ROOT.parent / "shared" / "data" / "music" / "Kevin_MacLeod_-_Vibe_Ace.hq.ogg"
VERSION = tomllib.loads((ROOT / "blender_manifest.toml").read_text())["version"]


def _load_build():
    spec = importlib.util.spec_from_file_location("choreo_build", ROOT / "build.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["choreo_build"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


build = _load_build()


# --------------------------------------------------------------------------- manifest

def test_manifest_passes_the_checks():
    text = (ROOT / "blender_manifest.toml").read_text()
    assert build.check_manifest(text) == []
    for platform in build.PLATFORMS:
        manifest = tomllib.loads(build.platform_manifest(platform))
        assert manifest["platforms"] == [platform]
        assert build.check_manifest(build.platform_manifest(platform)) == []


@pytest.mark.parametrize("change, expected", [
    (('tagline = "Dances generated from the music in the sequencer"',
      'tagline = "Dances generated from the music in the sequencer, keyed onto your own rig"'), "64 characters"),
    (('tagline = "Dances generated from the music in the sequencer"', 'tagline = "Dances from music."'),
     "punctuation"),
    (('id = "choreo"', 'id = "_choreo"'), "identifier"),
    (('id = "choreo"', 'id = "cho__reo"'), "identifier"),
    (('schema_version = "1.0.0"', 'schema_version = "2.0.0"'), "schema_version"),
    (('blender_version_max = "5.1.0"', 'blender_version_max = "5.2.0"'), "cp311"),
    (('blender_version_min = "4.2.0"', 'blender_version_min = "4.1.0"'), "4.2.0"),
    (('blender_version_min = "4.2.0"', 'blender_version_min = "4.2"'), "three numbers"),
    (('license = ["SPDX:GPL-3.0-or-later"]', 'license = ["GPL-3.0-or-later"]'), "SPDX"),
    (('license = ["SPDX:GPL-3.0-or-later"]', 'license = ["SPDX:Proprietary"]'), "SPDX"),
    (('[permissions]\n', '[permissions]\nnetwork = ""\n'), "permissions.network"),
    (('[permissions]\n', '[permissions]\nprinter = "Prints"\n'), "unknown permission"),
])
def test_manifest_checks_catch(change, expected):
    text = (ROOT / "blender_manifest.toml").read_text()
    assert change[0] in text
    errors = build.check_manifest(text.replace(*change))
    assert any(expected in e for e in errors), errors


def test_manifest_without_max_version_is_refused():
    text = re.sub(r'(?m)^blender_version_max.*\n', "", (ROOT / "blender_manifest.toml").read_text())
    assert any("blender_version_max" in e for e in build.check_manifest(text))


# --------------------------------------------------------------------------- pins

def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==")
            pins[build._norm(name)] = version
    return pins


def test_vendor_pins_are_the_dev_versions_and_never_numpy():
    vendor, engine = _pins(build.VENDOR_PINS), _pins(ROOT / "requirements" / "engine.txt")
    assert "numpy" not in vendor
    for name, version in engine.items():
        if name not in ("numpy", "torch"):
            assert vendor[name] == version, name
    for platform, spec in build.PLATFORMS.items():
        assert spec.torch.split("==")[1].split("+")[0] == engine["torch"], platform
    assert build.PLATFORMS["linux-x64"].torch.endswith("+cpu")
    for name, version in vendor.items():  # what the dev environment, where the tests pass, runs
        try:
            assert importlib.metadata.version(name) == version, name
        except importlib.metadata.PackageNotFoundError:
            pytest.skip("not the dev environment (.venv)")


def test_every_engine_import_is_vendored_or_stdlib():
    """A new third-party import in engine/ must be added to requirements/vendor.txt
    (or the installed zip fails with ModuleNotFoundError)."""
    provided = {"engine", "numpy", "torch", "torchgen", "functorch"}
    for name in _pins(build.VENDOR_PINS):
        try:
            files = importlib.metadata.files(name) or []
        except importlib.metadata.PackageNotFoundError:
            pytest.skip("not the dev environment (.venv)")
        provided |= {Path(str(f)).parts[0].removesuffix(".py") for f in files if not str(f).startswith("..")}
    missing = set()
    for path in (ROOT / "engine").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in provided:
                    missing.add(f"{path.relative_to(ROOT)}: {name}")
    assert not missing, sorted(missing)


def test_wheel_tag_rules():
    assert build.runs_on_cp311("cp311", "cp311")
    assert build.runs_on_cp311("cp310", "abi3")
    assert build.runs_on_cp311("py2.py3", "none")
    assert not build.runs_on_cp311("cp312", "cp312")
    assert not build.runs_on_cp311("cp312", "abi3")
    name, version, *_, platform = build.wheel_tags(
        Path("scipy-1.17.1-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl"))
    assert (name, version) == ("scipy", "1.17.1") and "manylinux_2_28_x86_64" in platform.split(".")


# --------------------------------------------------------------------------- the zips

def _build(platform: str, out: Path, check: bool = True) -> subprocess.CompletedProcess:
    args = [sys.executable, str(ROOT / "build.py"), "package", "--platform", platform, "--out", str(out)]
    if not build.MODEL.is_file():
        args.append("--no-model")  # the weights are not trained yet: tests bring a stand-in model
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=1200)
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def zips(tmp_path_factory) -> dict[str, Path]:
    """The linux-x64 zip (built once for the module)."""
    out = tmp_path_factory.mktemp("dist")
    result = _build("linux-x64", out)
    print(result.stdout[-3000:])
    return {"linux-x64": out / f"choreo-{VERSION}-linux-x64.zip"}


def _wheel_platform_tags(archive: zipfile.ZipFile) -> dict[str, set[str]]:
    """vendor/<dist>.dist-info/WHEEL Tag lines: platform tags per distribution."""
    tags = {}
    for name in archive.namelist():
        if re.fullmatch(r"vendor/[^/]+\.dist-info/WHEEL", name):
            lines = archive.read(name).decode().splitlines()
            tags[name.split("/")[1]] = {line.split("-")[-1] for line in lines if line.startswith("Tag:")}
    return tags


def check_layout(path: Path, platform: str) -> zipfile.ZipFile:
    """Everything the extension needs, and nothing it must not have."""
    archive = zipfile.ZipFile(path)
    names = set(archive.namelist())
    manifest = tomllib.loads(archive.read("blender_manifest.toml").decode())
    assert manifest["platforms"] == [platform] and manifest["version"] == VERSION
    assert build.check_manifest(archive.read("blender_manifest.toml").decode()) == []
    # The add-on at the root, the engine and the rigs inside it.
    for source, prefix in ((ROOT / "blender_addon", ""), (ROOT / "engine", "engine/"), (ROOT / "rigs", "rigs/")):
        for file in source.rglob("*"):
            if file.is_file() and "__pycache__" not in file.parts and file.suffix not in (".pyc", ".ckpt", ".npz"):
                assert prefix + file.relative_to(source).as_posix() in names, file
    assert {"__init__.py", "engine/__init__.py", "engine/commands/pipeline.py", "rigs/rigify.json"} <= names
    assert "assets/Kevin_MacLeod_-_Vibe_Ace.hq.ogg" in names and "assets/Kevin_MacLeod_-_Vibe_Ace.txt" in names
    assert "CC" in archive.read("assets/Kevin_MacLeod_-_Vibe_Ace.txt").decode()
    if build.MODEL.is_file():
        assert "engine/assets/choreo_dance_gan.safetensors" in names
    # The vendored engine dependencies: all of them, never numpy, no tests, caches or headers.
    tops = {n.split("/")[1] for n in names if n.startswith("vendor/")}
    assert {"torch", "librosa", "scipy", "numba", "llvmlite", "soundfile.py", "soxr", "safetensors",
            "joblib", "pooch", "lazy_loader", "audioread", "msgpack"} <= tops
    assert not [t for t in tops if t.startswith("numpy")]
    assert "vendor/librosa/__init__.pyi" in names  # lazy_loader reads it at run time
    dists = {n.split("/")[1] for n in names if re.fullmatch(r"vendor/[^/]+\.dist-info/METADATA", n)}
    wanted = {f"{n.replace('-', '_')}-{v}".lower() for n, v in (p.split("==") for p in build.vendor_pins(platform))}
    assert {d.removesuffix(".dist-info").lower() for d in dists} == wanted
    bad = [n for n in names if "__pycache__" in n or n.endswith((".pyc", "/RECORD")) or "/tests/" in n
           or n.startswith(("vendor/torch/include/", "vendor/torch/test/", "vendor/torch/share/"))]
    assert not bad, bad[:10]
    assert not [n for n in names if re.search(r"torch/lib/[^/]*(torch_cuda|c10_cuda|cudnn|cublas)", n)]
    licenses = archive.read("vendor/THIRD_PARTY_LICENSES.txt").decode()
    for package in ("torch", "librosa", "scipy", "numba", "llvmlite", "soundfile", "soxr", "safetensors"):
        assert re.search(rf"(?im)^{package} ", licenses), package
    # Windows' 260-character path limit: ~100 for %APPDATA%\Blender Foundation\Blender\4.2\extensions\
    # user_default\choreo\, ~25 more for the bytecode Python writes beside a module (__pycache__).
    assert max(len(n) for n in names) <= 120, max(names, key=len)
    assert "THIRD_PARTY_NOTICES.txt" in "".join(n for n in names if n.startswith("vendor/torch-"))
    return archive


def _blender_validate(path: Path) -> list[str]:
    verdicts = []
    for env, python, script in build.blender_validators():
        result = subprocess.run([str(python), str(script), "validate", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, f"{env}: {result.stdout}{result.stderr}"
        verdicts.append(result.stdout.strip())
    return verdicts


@pytest.mark.slow
def test_linux_zip_layout_and_blender_validator(zips):
    path = zips["linux-x64"]
    archive = check_layout(path, "linux-x64")
    assert "vendor/torch-2.13.0+cpu.dist-info/METADATA" in archive.namelist()  # the CPU build
    for dist, tags in _wheel_platform_tags(archive).items():
        assert tags == {"any"} or all(re.fullmatch(r"manylinux(_2_\d+|2014)_x86_64", t) for t in tags), (dist, tags)
    verdicts = _blender_validate(path)
    if not verdicts:
        pytest.skip("no bpy environment with Blender's validator")
    assert all(v.startswith("Success") for v in verdicts), verdicts
    assert path.stat().st_size < 300 * 2**20


@pytest.mark.slow
@pytest.mark.parametrize("platform, tag, binary", [
    ("windows-x64", r"win_amd64", ".pyd"),
    ("macos-arm64", r"macosx_\d+_\d+_(arm64|universal2)", ".so"),
])
def test_windows_and_macos_zips(tmp_path, platform, tag, binary):
    _build(platform, tmp_path)
    path = tmp_path / f"choreo-{VERSION}-{platform}.zip"
    archive = check_layout(path, platform)
    tags = _wheel_platform_tags(archive)
    for dist, found in tags.items():
        assert found == {"any"} or all(re.fullmatch(tag, t) for t in found), (dist, found)
    assert re.fullmatch(tag, next(iter(tags[next(d for d in tags if d.startswith("torch-"))])))
    assert any(n.startswith("vendor/torch/_C") and n.endswith(binary) for n in archive.namelist())
    elf = [n for n in archive.namelist() if n.endswith(".so") and archive.open(n).read(4) == b"\x7fELF"]
    assert not elf, elf[:5]  # no Linux binaries in another platform's zip
    _blender_validate(path)  # each bpy's validator passes (asserted inside)
    # Blender refuses another platform's zip (its manifest names the platform).
    python = ROOT / ".venv-bpy50" / "bin" / "python"
    if python.exists():
        report_file = tmp_path / "report.json"
        subprocess.run([str(python), str(ROOT / "tests" / "installed_extension.py"), str(path), "--report",
                        str(report_file)], cwd=tmp_path, env=_clean_env(tmp_path / "blender"),
                       capture_output=True, text=True, timeout=600)
        install = json.loads(report_file.read_text())["install"]
        assert not install["enabled"] and install["listing"] == [], install


@pytest.mark.slow
def test_macos_intel_zip_is_refused_with_the_reason(tmp_path):
    result = _build("macos-x64", tmp_path, check=False)
    assert result.returncode != 0
    assert "no macOS x86_64" in result.stderr and "2.2.2" in result.stderr
    assert not list(tmp_path.glob("*.zip"))


# --------------------------------------------------------------------------- installed into real bpy

BLENDERS = {"4.2": ".venv-bpy42", "4.5": ".venv", "5.0": ".venv-bpy50"}
DEV_PYTHON = ROOT / ".venv" / "bin" / "python"
# 4.5's environment is the dev one, with torch: there the zip is installed and enabled, and
# the engine process is checked to take torch from vendor/; 4.2 and 5.0 have no torch and
# generate through the installed extension.
GENERATE = {"4.2", "5.0"}


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    """'' (the zip's shipped weights), or a stand-in model while they are not trained."""
    if build.MODEL.is_file():
        return ""
    import torch  # the dev environment: the stand-in is made here, not in the Blender process

    from engine.checkpoint import save_model
    from engine.corpus import SHIPPED_STYLES
    from engine.model import FEATURES, Generator, ModelConfig
    from engine.rhythm import COND_DIM

    styles = list(json.loads(SHIPPED_STYLES.read_text()))
    torch.manual_seed(0)
    n = len(styles)
    stats = {"mean": torch.zeros(FEATURES), "std": torch.full((FEATURES,), 0.1),
             "low": torch.full((n, FEATURES), -3.0), "high": torch.full((n, FEATURES), 3.0),
             "style_mean": torch.zeros(n, FEATURES)}
    stats["style_mean"][:, [0, 4]] = 1.0  # identity rotations in 6D
    path = tmp_path_factory.mktemp("model") / "standin.safetensors"
    save_model(path, Generator(ModelConfig(cond_dims=COND_DIM, styles=n, width=16)).eval(), stats, styles)
    return str(path)


@pytest.fixture(scope="module")
def strip_blend(tmp_path_factory) -> str:
    """The shared song as a sound strip, saved by bpy 4.5 (the 4.2 wheel has no Audaspace)."""
    path = tmp_path_factory.mktemp("strip") / "strip.blend"
    code = ("import sys, bpy; from pathlib import Path; from blender_addon import demo; "
            "bpy.ops.wm.read_factory_settings(use_empty=True); s = bpy.context.scene; "
            "s.render.fps, s.render.fps_base = 30, 1.0; "
            f"demo.add_sound_strip(s, Path({str(SHARED_SONG)!r})); "
            f"bpy.ops.wm.save_as_mainfile(filepath={str(path)!r})")
    subprocess.run([str(DEV_PYTHON), "-c", code], check=True, capture_output=True,
                   timeout=600, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    return str(path)


def _clean_env(user_resources: Path) -> dict[str, str]:
    """Nothing of the repository or the dev environment: what a user's Blender has."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "CHOREO_ENGINE_PYTHON", "PYTHONDONTWRITEBYTECODE", "PYTHONHOME")}
    env["BLENDER_USER_RESOURCES"] = str(user_resources)
    return env


@pytest.mark.slow
@pytest.mark.parametrize("blender", list(BLENDERS))
def test_installed_zip_enables_and_generates(zips, model, strip_blend, tmp_path, blender):
    python = ROOT / BLENDERS[blender] / "bin" / "python"
    if not python.exists():
        pytest.skip(f"no {BLENDERS[blender]} environment")
    if blender in GENERATE and not SHARED_SONG.exists():
        pytest.skip(f"shared song not found at {SHARED_SONG}")
    report_file = tmp_path / "report.json"
    cmd = [str(python), str(ROOT / "tests" / "installed_extension.py"), str(zips["linux-x64"]),
           "--report", str(report_file)]
    if blender in GENERATE:
        cmd += ["--generate", "--song", str(SHARED_SONG), "--work", str(tmp_path), "--model", model,
                "--strip-blend", strip_blend, "--other-python", str(DEV_PYTHON)]
    result = subprocess.run(cmd, cwd=tmp_path, env=_clean_env(tmp_path / "blender"), capture_output=True,
                            text=True, timeout=1200)
    assert result.returncode == 0 and report_file.exists(), result.stdout[-3000:] + result.stderr[-5000:]
    report = json.loads(report_file.read_text())
    assert report["blender"].startswith(blender)
    assert report["user_extensions"].startswith(str(tmp_path / "blender"))  # isolated from the user's
    install = report["install"]
    assert install["result"] == ["FINISHED"] and install["enabled"] and install["registered"], install
    folder = Path(install["folder"])
    assert {"__init__.py", "blender_manifest.toml", "engine", "rigs", "vendor", "assets"} <= set(install["listing"])
    # The vendored packages stay out of Blender's own Python.
    assert install["vendor_on_blender_path"] == [] and install["blender_imported"] == []
    child = report["engine_child"]
    assert child["engine_python"] == child["blender_python"]  # the default: Blender's own Python
    assert child["pythonpath"][:2] == [str(folder), str(folder / "vendor")]
    modules = child["modules"]
    assert isinstance(modules, dict), modules
    for name in ("torch", "librosa", "scipy", "numba"):
        assert Path(modules[name]).is_relative_to(folder / "vendor"), (name, modules[name])
    assert not Path(modules["numpy"]).is_relative_to(folder)  # Blender's numpy, never vendored
    if blender not in GENERATE:
        return
    assert not child["bare_python_has_torch"]  # this interpreter has no torch of its own
    # Another Engine Python (a CUDA environment, in the preferences) keeps its own torch:
    # the vendored CPU build must not shadow it.
    other = child["other"]
    assert other["found"] == str(DEV_PYTHON) and str(folder / "vendor") not in other["pythonpath"]
    assert Path(other["modules"]["torch"]).is_relative_to(ROOT / ".venv"), other["modules"]
    generated = report["generate"]
    summary = generated["summary"]
    assert summary["actions"] and generated["action_on_rig"]
    assert (summary["frame_start"], summary["frame_end"]) == (1.0, 240.0)
    assert {"torso", "thigh_fk.L", "upper_arm_fk.R", "head"} <= set(generated["keyed_bones"])
    # The engine process imported torch and librosa from vendor/ and compiled them there.
    assert {"torch", "librosa"} <= set(generated["compiled_in_vendor"]), generated["compiled_in_vendor"]
    assert generated["blender_imported"] == []
    print(f"bpy {blender}: installed in {install['seconds']} s, generated in {generated['seconds']} s")
