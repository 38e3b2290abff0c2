"""Per-style energy offsets (engine.calibrate): the shipped generator on real salsa takes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from engine import calibrate as C
from engine.checkpoint import load_model
from engine.train import cached_training_set


@pytest.fixture(scope="module")
def salsa(tiny_data):
    """The shipped model, and the two real takes (with their augmented copies) as
    its salsa styles' training set."""
    model = load_model()
    data = cached_training_set(tiny_data, log=lambda *_: None)
    names = {"lead": "salsa_lead", "follow": "salsa_follow"}
    return model, replace(data, style=[model[2].index(names[data.styles[s]]) for s in data.style],
                          styles=list(model[2]))


def test_the_offset_makes_the_generator_move_at_the_takes_speed(salsa):
    model, data = salsa
    offsets = C.style_energy_offsets(model, data).numpy()
    for s, style in enumerate(model[2]):
        clips = C.calibration_clips(data, s)
        if not clips:  # modern and pop have no takes here
            assert offsets[s] == 0.0, style
            continue
        low, high = C.OFFSET_RANGE
        assert low < offsets[s] < high, style
        target = C.real_speed(data, clips)
        assert C.generated_speed(model, data, clips, style, float(offsets[s])) == pytest.approx(target, rel=0.01)
        # the bisection's premise: more energy, faster movement
        speeds = [C.generated_speed(model, data, clips, style, x) for x in (low, 0.0, high)]
        assert np.all(np.diff(speeds) > 0), (style, speeds)


def test_the_bisection_finds_a_crossing_and_stops_at_the_ends():
    from engine.bisection import bisect

    assert bisect(lambda x: x**3 < 0.2, 0.0, 1.0, 20) == pytest.approx(0.2 ** (1 / 3), abs=1e-6)
    # a value outside the range: half the last interval from the nearer end
    assert bisect(lambda x: True, -0.3, 0.5, 10) == pytest.approx(0.5 - 0.8 / 2**11)
    assert bisect(lambda x: False, -0.3, 0.5, 10) == pytest.approx(-0.3 + 0.8 / 2**11)
