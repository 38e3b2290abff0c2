"""engine.commands.pipeline: the add-on's engine side (request checks, Regenerate range merging, errors)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.commands import pipeline as P
from engine.errors import ChoreoError

ROOT = Path(__file__).resolve().parents[1]


def _quats(n, seed):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(n, 4)).cumsum(axis=0) * 0.05 + [1, 0, 0, 0]
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def test_merge_keeps_the_outside_and_blends_the_seams():
    prev = {"fps": 30.0, "rotations": {"a": _quats(120, 0)}, "locations": {"hips": np.cumsum(np.ones((120, 3)) * 0.01, 0)}}
    new = {"fps": 30.0, "rotations": {"a": _quats(40, 1)}, "locations": {"hips": np.full((40, 3), 5.0)}}
    out = P.merge_curves(prev, new, offset=40, blend=8)
    np.testing.assert_allclose(out["rotations"]["a"][:40], prev["rotations"]["a"][:40])
    np.testing.assert_allclose(out["rotations"]["a"][80:], prev["rotations"]["a"][80:])
    assert not np.allclose(out["rotations"]["a"][50:70], prev["rotations"]["a"][50:70])
    np.testing.assert_allclose(np.linalg.norm(out["rotations"]["a"], axis=1), 1.0)
    # no jump at the seams: steps there are no bigger than inside the clips
    loc = out["locations"]["hips"]
    steps = np.linalg.norm(np.diff(loc, axis=0), axis=1)
    assert steps.max() < 0.1  # the new clip at 5 m was moved to continue the old path
    q = out["rotations"]["a"]
    dots = np.abs(np.einsum("ij,ij->i", q[1:], q[:-1]))
    assert dots.min() > 0.95


def test_request_checks_and_seeds():
    with pytest.raises(ChoreoError, match="no audio"):
        P.normalize_request({"out_dir": "x"})
    with pytest.raises(ChoreoError, match="no target"):
        P.normalize_request({"audio": "a.ogg", "out_dir": "x"})
    with pytest.raises(ChoreoError, match="empty"):
        P.normalize_request({"audio": "a.ogg", "out_dir": "x", "start": 5, "end": 2, "mode": "beats"})
    assert P.seeds_for(3, 2, 2) == [[3, 4], [5, 6]]


def test_one_shot_errors_are_one_json_line(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "engine.commands.pipeline", "--audio", str(tmp_path / "no.ogg"),
                           "--out-dir", str(tmp_path), "--mode", "beats"], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 1
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert "not found" in lines[-1]["error"] and all("error" in l or "stage" in l for l in lines)


def test_the_add_on_gets_the_dance_the_command_line_makes():
    """The add-on's engine side conditions the generator exactly as `engine generate`
    does: the demo song runs at 130 BPM, which both fold to half time."""
    from engine.audio import analyze
    from engine.generate import generate_dance

    song = ROOT / "blender_addon" / "assets" / "Kevin_MacLeod_-_Vibe_Ace.hq.ogg"
    music = analyze(song, fps=30.0, start=20.0, end=32.0)
    assert music.tempo > 115
    req = {"energy": 1.0, "device": "cpu", "model": None, "style": "salsa_lead"}
    add_on = P._generate(req, music, 3, lambda fraction, message: None)
    command_line = generate_dance(song, style="salsa_lead", seed=3, start=20.0, end=32.0, device="cpu")
    np.testing.assert_allclose(add_on.positions, command_line.positions, atol=1e-9)
