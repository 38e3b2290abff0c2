"""Running the engine as a child process (stdlib only: no bpy, no torch here).

Blender's own Python never imports torch or librosa (DESIGN.md). The engine
runs as ``python -m engine.commands.pipeline --serve`` in a child process that
answers JSON requests on stdin with JSON lines on stdout. Reader threads move
those lines into a queue, so :meth:`Job.poll` never blocks (the modal timer
calls it) and :meth:`Job.wait` blocks (headless, where timers never fire).
Cancel ends the process. Between generations the process stays alive (warm),
which saves torch's and librosa's import time and the model load on every run
after the first; ``bench/bench_engine_warm.py`` measures it.
"""

from __future__ import annotations

import atexit
import collections
import itertools
import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

ADDON_DIR = Path(__file__).resolve().parent
#: Folders next to the add-on that may hold the engine's vendored dependencies.
DEPS_DIR_NAMES = ("engine_deps", "vendor", "deps")
_REQUIRED = ("numpy", "torch", "librosa", "engine")
_CHECK = ("import importlib.util as u, sys; "
          f"sys.exit(0 if all(u.find_spec(m) for m in {_REQUIRED!r}) else 3)")
_EOF = object()


class EngineError(RuntimeError):
    """A failure the user can act on; the message says what to do."""


def engine_root() -> Path:
    """The folder that holds the ``engine`` package: the add-on's own folder in an
    installed extension, the repository root in a development checkout."""
    for folder in (ADDON_DIR, ADDON_DIR.parent):
        if (folder / "engine" / "__init__.py").is_file():
            return folder
    raise EngineError("the Choreo engine is missing from the add-on folder; reinstall the extension")


def deps_dirs() -> list[Path]:
    """Vendored dependency folders shipped beside the add-on (may be none)."""
    return [ADDON_DIR / name for name in DEPS_DIR_NAMES if (ADDON_DIR / name).is_dir()]


def child_env(extra_paths: list[Path] | None = None) -> dict[str, str]:
    """The environment of the engine process: the engine and its vendored
    dependencies first on PYTHONPATH, unbuffered output."""
    paths = [str(engine_root()), *(str(p) for p in deps_dirs()), *(str(p) for p in extra_paths or [])]
    old = os.environ.get("PYTHONPATH")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths + ([old] if old else [])),
               PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8")
    env.pop("PYTHONHOME", None)
    return env


def env_for(python: str, env: dict[str, str]) -> dict[str, str]:
    """``env`` for ``python``: the vendored dependencies are cp311 builds for Blender's
    own Python (the default engine Python); another interpreter, such as a CUDA
    environment named in the preferences, uses its own packages, not the CPU torch."""
    same = os.path.normcase(os.path.abspath(python)) == os.path.normcase(os.path.abspath(sys.executable))
    if same:  # (not realpath: a virtualenv's python links to the base interpreter)
        return env
    vendored = {str(p) for p in deps_dirs()}
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p not in vendored]
    return {**env, "PYTHONPATH": os.pathsep.join(paths)}


_deps_cache: dict[tuple[str, str], bool] = {}


def has_engine_deps(python: str, env: dict[str, str]) -> bool:
    """Whether ``python`` finds numpy, torch, librosa and the engine (no import: fast)."""
    key = (python, env.get("PYTHONPATH", ""))
    if key not in _deps_cache:
        try:
            ok = subprocess.run([python, "-c", _CHECK], env=env, capture_output=True,
                                timeout=60).returncode == 0
        except (OSError, subprocess.SubprocessError):
            ok = False
        _deps_cache[key] = ok
    return _deps_cache[key]


def find_python(preferred: str = "", env: dict[str, str] | None = None) -> str:
    """The interpreter that runs the engine: ``preferred`` when set (a path from
    the preferences), else ``$CHOREO_ENGINE_PYTHON`` (pipelines, CI), else this
    process's own Python when it can run the engine."""
    env = env or child_env()
    preferred = preferred or os.environ.get("CHOREO_ENGINE_PYTHON", "")
    if preferred:
        path = os.path.abspath(os.path.expanduser(preferred))
        if not os.path.isfile(path):
            raise EngineError(f"the engine Python {preferred!r} does not exist; fix the path in "
                              "Preferences > Add-ons > Choreo or clear it to use the bundled engine")
        if not has_engine_deps(path, env_for(path, env)):
            raise EngineError(f"the engine Python {preferred!r} cannot import torch and librosa; "
                              "install them there or point Preferences > Add-ons > Choreo at another Python")
        return path
    python = sys.executable
    if python and has_engine_deps(python, env):
        return python
    raise EngineError("the engine's dependencies (torch, librosa) are not installed; reinstall the "
                      "Choreo extension for your platform or set an engine Python in "
                      "Preferences > Add-ons > Choreo")


class Job:
    """One request's answer stream: progress, then a result or an error."""

    def __init__(self, process: "EngineProcess", job_id: int):
        self.process = process
        self.id = job_id
        self.stage = "starting"
        self.progress = 0.0
        self.message = "starting the engine"
        self.result: dict | None = None
        self.error: str | None = None
        self.cancelled = False
        self.events: list[dict] = []
        self.started = time.perf_counter()

    @property
    def finished(self) -> bool:
        return self.result is not None or self.error is not None or self.cancelled

    def _handle(self, event: dict) -> None:
        self.events.append(event)
        if "error" in event:
            self.error = str(event["error"])
        elif event.get("done"):
            self.result = event
            self.progress = 1.0
        elif "progress" in event:
            self.stage = str(event.get("stage", self.stage))
            self.progress = max(self.progress, float(event["progress"]))
            self.message = str(event.get("message", self.message))

    def poll(self) -> list[dict]:
        """New events since the last call (never blocks)."""
        if self.finished:
            return []
        return self.process._drain(self, block=False)

    def wait(self, timeout: float | None = None, on_event: Callable[[dict], None] | None = None) -> dict:
        """Block until the result; raises EngineError on an error or the timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.finished:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                self.cancel()
                raise EngineError(f"the engine did not finish within {timeout:g} s")
            for event in self.process._drain(self, block=True, timeout=min(remaining or 0.5, 0.5)):
                if on_event:
                    on_event(event)
        if self.error is not None:
            raise EngineError(self.error)
        if self.cancelled:
            raise EngineError("cancelled")
        assert self.result is not None
        return self.result

    def cancel(self) -> None:
        """End the engine process; nothing it was doing reaches the scene."""
        if self.finished:
            return
        self.cancelled = True
        self.message = "cancelled"
        self.process.terminate()


class EngineProcess:
    """A running ``pipeline --serve`` child process."""

    def __init__(self, python: str, env: dict[str, str]):
        self.python = python
        self.env = env
        self._ids = itertools.count(1)
        self._lines: queue.Queue = queue.Queue()
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=40)
        self.ready: dict | None = None
        self.started = time.perf_counter()
        cmd = [python, "-u", "-m", "engine.commands.pipeline", "--serve"]
        kwargs: dict = {"creationflags": getattr(subprocess, "CREATE_NO_WINDOW", 0)} if os.name == "nt" else {}
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, env=env, cwd=str(engine_root()),
                                         text=True, encoding="utf-8", errors="replace", bufsize=1, **kwargs)
        except OSError as exc:
            raise EngineError(f"cannot start the engine Python {python!r} ({exc}); check "
                              "Preferences > Add-ons > Choreo") from exc
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    # ---- reader threads
    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(_EOF)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if line.strip():
                self.stderr_tail.append(line.rstrip())

    # ---- state
    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def submit(self, request: dict) -> Job:
        """Send one request; the answer arrives through the returned Job."""
        job = Job(self, next(self._ids))
        line = json.dumps({**request, "id": job.id}) + "\n"
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(line)
            self.proc.stdin.flush()
        except (OSError, ValueError) as exc:
            job.error = self._crash_message(f"the engine process is not accepting requests ({exc})")
        return job

    def _drain(self, job: Job, block: bool, timeout: float = 0.5) -> list[dict]:
        new: list[dict] = []
        while not job.finished:
            try:
                line = self._lines.get(block=block and not new, timeout=timeout)
            except queue.Empty:
                break
            if line is _EOF:
                self._lines.put(_EOF)  # later drains see it too
                if not job.finished:
                    job.error = self._crash_message()
                break
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                self.stderr_tail.append(line.rstrip())  # stray output: keep it for the log
                continue
            if not isinstance(event, dict):
                continue
            if event.get("ready"):
                self.ready = event
                continue
            if event.get("id") not in (None, job.id):
                continue
            job._handle(event)
            new.append(event)
        return new

    def _crash_message(self, what: str | None = None) -> str:
        code = self.proc.poll()
        if code is None:
            try:
                code = self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                code = None
        time.sleep(0.05)  # let the stderr thread catch the last lines
        last = next((line for line in reversed(self.stderr_tail)
                     if not line.startswith(("Traceback", "  "))), "")
        what = what or f"the engine stopped unexpectedly (exit code {code})"
        return (f"{what}{': ' + last if last else ''}. Try again; if it keeps failing, check the "
                "engine Python in Preferences > Add-ons > Choreo and the system console")

    def terminate(self) -> None:
        """End the process now (terminate, then kill after 3 s)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=3)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                if stream:
                    stream.close()
            except OSError:
                pass

    def close(self, timeout: float = 5.0) -> None:
        """Ask the process to exit (end of stdin), then make sure it has."""
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps({"shutdown": True}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=timeout)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                pass
        self.terminate()


# --------------------------------------------------------------------------- the warm process

_warm: EngineProcess | None = None
_lock = threading.Lock()


def engine(python: str, env: dict[str, str], reuse: bool = True) -> EngineProcess:
    """A process for the next request: the warm one when it matches and is alive."""
    global _warm
    with _lock:
        if reuse and _warm is not None and _warm.alive and _warm.python == python and _warm.env == env:
            return _warm
        if _warm is not None:
            _warm.close(timeout=2)
            _warm = None
        process = EngineProcess(python, env)
        if reuse:
            _warm = process
        return process


def start_job(request: dict, python: str, env: dict[str, str] | None = None, reuse: bool = True) -> Job:
    """Submit ``request`` to a (warm, when ``reuse``) engine process."""
    env = env_for(python, env or child_env())
    process = engine(python, env, reuse)
    if reuse and not process.alive:
        process = engine(python, env, reuse)
    return process.submit(request)


def finish(job: Job, reuse: bool = True) -> None:
    """After a job: keep a warm process, or end a one-off one."""
    global _warm
    process = job.process
    if not reuse or not process.alive or job.cancelled:
        process.close(timeout=2)
        with _lock:
            if _warm is process:
                _warm = None


def shutdown() -> None:
    """End the warm process (add-on unregister, Blender exit)."""
    global _warm
    with _lock:
        process, _warm = _warm, None
    if process is not None:
        process.close(timeout=2)


def warm_process() -> EngineProcess | None:
    return _warm if _warm is not None and _warm.alive else None


atexit.register(shutdown)
