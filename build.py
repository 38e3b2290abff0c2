"""Choreo's development tasks.

    python3 build.py test      set up the environments and run the whole test suite
    python3 build.py setup     only set up the environments
    python3 build.py demo      set up, then make out/demo.blend, out/demo.mp4, out/demo_report.json

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
import hashlib
import os
import re
import subprocess
import sys
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
    """Digest of a requirements file and the files it includes with -r."""
    digest = hashlib.sha256()
    for line in path.read_text().splitlines():
        digest.update(line.encode())
        if line.startswith("-r "):
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("task", choices=["setup", "test", "demo"])
    parser.add_argument("extra", nargs=argparse.REMAINDER, help="passed on to pytest (or the demo)")
    args = parser.parse_args()
    if args.task == "setup":
        setup()
        return 0
    if args.task == "demo":
        return demo(args.extra)
    return test(args.extra)


if __name__ == "__main__":
    sys.exit(main())
