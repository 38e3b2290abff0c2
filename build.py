"""Choreo's development tasks.

    python3 build.py test      set up the environments and run the whole test suite
    python3 build.py setup     only set up the environments

Environments are virtualenvs under the repo root, rebuilt when their
requirements file changes:

    .venv          engine + real bpy 4.5 LTS + pytest (the full suite runs here)
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
REQUIREMENTS = ROOT / "requirements"

ENVIRONMENTS = {
    ".venv": REQUIREMENTS / "dev.txt",
}


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


def test(pytest_args: list[str]) -> int:
    setup()
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    cmd = [str(_python(".venv")), "-m", "pytest", "tests", "-q", *pytest_args]
    return subprocess.run(cmd, cwd=ROOT, env=env).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("task", choices=["setup", "test"])
    parser.add_argument("extra", nargs=argparse.REMAINDER, help="passed on to pytest")
    args = parser.parse_args()
    if args.task == "setup":
        setup()
        return 0
    return test(args.extra)


if __name__ == "__main__":
    sys.exit(main())
