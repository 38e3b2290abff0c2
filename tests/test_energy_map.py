"""Music energy re-expressed as a style's motion energy (engine.energy_map), on real data."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d

from engine.audio import HOP, features_from_samples
from engine.audio_io import load_audio
from engine.checkpoint import DEFAULT_MODEL, load_model
from engine.energy_map import (ENERGY, PHASE_BINS, SMOOTH_S, _phase_bins, _split, as_motion_energy,
                               style_energy_reference)
from engine.errors import ChoreoError
from engine.generate import FPS, fold_tempo, music_conditioning
from engine.rhythm import conditioning
from engine.train import cached_training_set

VIBE_ACE = "music/Kevin_MacLeod_-_Vibe_Ace.hq.ogg"
shipped = pytest.mark.skipif(not DEFAULT_MODEL.exists(), reason="no shipped model")


@pytest.fixture(scope="module")
def mixes(shared_data):
    """40 s of a real song as mixed, and the same squashed into a loud, compressed master."""
    y, _ = load_audio(shared_data / VIBE_ACE, 0.0, 40.0, sr=FPS * HOP)
    y = y / np.abs(y).max()
    loud = np.tanh(8.0 * y) / np.tanh(8.0)
    return features_from_samples(y, FPS), features_from_samples(loud, FPS)


@pytest.fixture(scope="module")
def model():
    return load_model()


def test_real_dancers_slow_down_on_their_beats(tiny_data):
    ref = style_energy_reference(cached_training_set(tiny_data, log=lambda *_: None))
    quantiles, dip = ref["energy_quantiles"].numpy(), ref["energy_beat_dip"].numpy()
    assert quantiles.shape == (2, 101) and dip.shape == (2, PHASE_BINS)
    assert np.all(np.diff(quantiles, axis=1) >= 0) and quantiles.min() >= 0 and quantiles.max() <= 1
    on_beat = dip[:, [0, -1]].mean(1)
    mid_beat = dip[:, PHASE_BINS // 2 - 2:PHASE_BINS // 2 + 2].mean(1)
    assert np.all(on_beat < 0.95) and np.all(mid_beat > 0.98)
    ratio = ref["energy_section_ratio"].numpy()
    assert ratio.shape == (2,) and np.all((ratio > 0.05) & (ratio < 5))


def _undipped_section_ratio(out, cond, dip):
    """Section-scale std over the rest's, of mapped energy with its beat dip taken out."""
    sections, rest = _split((out[:, ENERGY] / dip[_phase_bins(cond)]).astype(float), FPS)
    return sections, sections.std() / rest.std()


def test_the_section_ratio_is_the_takes_as_recorded(tiny_data):
    """Stretched, mirrored and half-time copies shape the quantiles, not the ratio."""
    data = cached_training_set(tiny_data, log=lambda *_: None)
    ref = style_energy_reference(data)
    rng = np.random.default_rng(0)
    noisy = replace(data, cond=[c if kept else np.column_stack([c[:, :ENERGY], rng.uniform(size=len(c)), c[:, ENERGY + 1:]])
                                for c, kept in zip(data.cond, data.as_recorded)])
    again = style_energy_reference(noisy)
    np.testing.assert_allclose(again["energy_section_ratio"], ref["energy_section_ratio"], rtol=1e-6)
    assert not np.allclose(again["energy_quantiles"], ref["energy_quantiles"], atol=0.01)


@pytest.mark.parametrize("balanced", [False, True])
def test_the_mapped_energy_keeps_the_dancers_level(tiny_data, balanced):
    """Mapped back onto its own takes' envelope, a style's energy keeps their mean:
    the beat dip is a ratio of sums (a mean of per-frame ratios read 2-6% low), and
    the section balance reorders frames, it does not move the level."""
    data = cached_training_set(tiny_data, log=lambda *_: None)
    ref = style_energy_reference(data)
    for s in range(len(data.styles)):
        cond = np.concatenate([c for c, st in zip(data.cond, data.style) if st == s])
        out = as_motion_energy(cond, ref["energy_quantiles"][s].numpy(), ref["energy_beat_dip"][s].numpy(), FPS,
                               ref["energy_section_ratio"][s].item() if balanced else None)
        assert out[:, ENERGY].mean() == pytest.approx(cond[:, ENERGY].mean(), rel=0.02)


@shipped
def test_a_loud_master_dances_like_the_quiet_mix(mixes, model):
    quiet, loud = (conditioning(fold_tempo(m)) for m in mixes)
    assert loud[:, ENERGY].mean() > quiet[:, ENERGY].mean() + 0.15  # the raw RMS column
    for style in model[2]:
        a, b = (music_conditioning(m, model, style) for m in mixes)
        sid = model[2].index(style)
        level = model[1]["energy_quantiles"][sid].numpy().mean() + model[1]["style_energy_offset"][sid].item()
        assert abs(a[:, ENERGY].mean() - b[:, ENERGY].mean()) < 0.03, style
        assert abs(a[:, ENERGY].mean() - level) < 0.05, style
        np.testing.assert_array_equal(a[:, :ENERGY], conditioning(fold_tempo(mixes[0]))[:, :ENERGY])


@shipped
def test_sections_weigh_as_much_as_in_the_takes(mixes, model):
    """The song's section-scale energy, against its phrase-scale energy, stands in
    each style's own ratio once mapped (the raw ranking keeps the song's: 0.66-0.96
    on this excerpt, where modern's and pop's takes have 0.39 and 0.35), and the
    quiet sections still dance the quietest at that scale."""
    cond = conditioning(fold_tempo(mixes[0]))
    for style in model[2]:
        sid = model[2].index(style)
        quantiles, dip = (model[1][k][sid].numpy() for k in ("energy_quantiles", "energy_beat_dip"))
        target = model[1]["energy_section_ratio"][sid].item()
        sections, ratio = _undipped_section_ratio(music_conditioning(mixes[0], model, style), cond, dip)
        raw_sections, raw_ratio = _undipped_section_ratio(as_motion_energy(cond, quantiles, dip, FPS), cond, dip)
        assert ratio == pytest.approx(target, rel=0.05), style
        assert np.corrcoef(sections, raw_sections)[0, 1] > 0.95, style
        if style == "pop":
            assert raw_ratio > 2 * target


@shipped
def test_sections_are_never_strengthened(mixes, model):
    """6 s of music has hardly any section-scale part (a ratio of 0.05): the balance
    leaves it as it is rather than make the dance build over it."""
    cond = conditioning(fold_tempo(mixes[0]))[:180]
    for sid in range(len(model[2])):
        quantiles, dip = (model[1][k][sid].numpy() for k in ("energy_quantiles", "energy_beat_dip"))
        ratio = model[1]["energy_section_ratio"][sid].item()
        raw = as_motion_energy(cond, quantiles, dip, FPS)
        assert _undipped_section_ratio(raw, cond, dip)[1] < 0.5 * ratio
        np.testing.assert_array_equal(as_motion_energy(cond, quantiles, dip, FPS, ratio), raw)


@shipped
def test_the_raw_ranking_keeps_the_envelopes_order(mixes, model):
    cond = conditioning(fold_tempo(mixes[0]))
    sid = model[2].index("modern")
    dip = model[1]["energy_beat_dip"][sid].numpy()
    out = as_motion_energy(cond, model[1]["energy_quantiles"][sid].numpy(), dip, FPS)
    undipped = out[:, ENERGY] / dip[_phase_bins(cond)]
    order = np.argsort(gaussian_filter1d(cond[:, ENERGY].astype(float), SMOOTH_S * FPS), kind="stable")
    order = order[out[order, ENERGY] < 1.0]  # not clipped at the top
    assert len(order) > 0.9 * len(out) and np.all(np.diff(undipped[order]) > -1e-5)
    silent = cond.copy()
    silent[:, ENERGY] = 0.0
    assert not as_motion_energy(silent, model[1]["energy_quantiles"][sid].numpy(), dip, FPS)[:, ENERGY].any()


@shipped
def test_the_styles_offset_raises_its_energy(mixes, model):
    """The calibrated offset (engine.calibrate) lifts the mapped energy, inside
    [0, 1]; silence stays still."""
    cond = conditioning(fold_tempo(mixes[0]))
    for sid, style in enumerate(model[2]):
        stats = model[1]
        args = (stats["energy_quantiles"][sid].numpy(), stats["energy_beat_dip"][sid].numpy(), FPS,
                stats["energy_section_ratio"][sid].item())
        offset = stats["style_energy_offset"][sid].item()
        plain = as_motion_energy(cond, *args)
        np.testing.assert_allclose(music_conditioning(mixes[0], model, style)[:, ENERGY],
                                   np.clip(plain[:, ENERGY] + offset, 0.0, 1.0), atol=1e-6)
        assert 0.0 < offset < 0.1, style
        up = as_motion_energy(cond, *args, offset=0.5)[:, ENERGY]
        assert up.max() == 1.0 and np.all(up >= np.minimum(plain[:, ENERGY] + 0.5, 1.0) - 1e-6)
        silent = cond.copy()
        silent[:, ENERGY] = 0.0
        assert not as_motion_energy(silent, *args, offset=offset)[:, ENERGY].any()


@shipped
def test_styles_are_checked_and_older_model_files_keep_the_raw_energy(mixes, model):
    with pytest.raises(ChoreoError, match="available styles: salsa_lead"):
        music_conditioning(mixes[0], model, "tango")
    generator, stats, styles, meta = model
    older = (generator, {k: v for k, v in stats.items() if not k.startswith("energy_")}, styles, meta)
    np.testing.assert_array_equal(music_conditioning(mixes[0], older, "pop"), conditioning(fold_tempo(mixes[0])))
