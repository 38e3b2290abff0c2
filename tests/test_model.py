"""The GAN's shapes, determinism, model files and a real (tiny) training run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.augment import time_stretch
from engine.checkpoint import load_model, read_file, restore_training, save_model
from engine.cli import main
from engine.errors import ChoreoError
from engine.generate import generate_from_conditioning
from engine.model import FEATURES, Discriminator, Generator, ModelConfig
from engine.motion import load_motion
from engine.normalize import resample
from engine.rhythm import motion_rhythm
from engine.train import (HALF_TIME_FROM_BPM, WINDOW, Batches, TrainConfig, cached_training_set,
                          style_level_energy, train, update_average)

STYLES = ["a", "b"]


def _model(tmp_path, attention=True):
    torch.manual_seed(0)
    cfg = ModelConfig(cond_dims=5, styles=2, width=16, attention=attention)
    gen = Generator(cfg).eval()
    stats = {"mean": torch.zeros(FEATURES), "std": torch.full((FEATURES,), 0.1),
             "low": torch.full((2, FEATURES), -3.0), "high": torch.full((2, FEATURES), 3.0),
             "style_mean": torch.zeros(2, FEATURES)}
    stats["style_mean"][:, [0, 4]] = 1.0  # identity rotations in 6D
    path = tmp_path / "m.safetensors"
    save_model(path, gen, stats, STYLES)
    return path


def _cond(frames, seed=0):
    rng = np.random.default_rng(seed)
    phase = (np.arange(frames) / 15.0) % 1.0
    return np.stack([np.sin(2 * np.pi * phase), np.cos(2 * np.pi * phase),
                     rng.random(frames), rng.random(frames), np.full(frames, 0.6)], 1).astype(np.float32)


@pytest.mark.parametrize("frames", [1, 7, 128, 1001])
def test_any_length_in_one_pass(frames):
    gen = Generator(ModelConfig(cond_dims=5, styles=2, width=16)).eval()
    with torch.no_grad():
        out = gen(torch.randn(1, frames, 5), torch.randn(1, gen.noise_length(frames), 32), torch.tensor([1]))
    assert out.shape == (1, frames, FEATURES) and torch.isfinite(out).all()


def test_discriminator_scores_patches():
    d = Discriminator(ModelConfig(cond_dims=5, styles=2, width=16))
    score, hidden = d(torch.randn(3, 64, FEATURES - 4), torch.randn(3, 64, 72), torch.randn(3, 64, 5),
                      torch.tensor([0, 1, 0]))
    assert score.shape == (3, 16) and hidden.shape[0] == 3


def test_attention_is_local_and_linear():
    """A change at the start of a long song does not reach frames far away."""
    gen = Generator(ModelConfig(cond_dims=5, styles=2, width=16)).eval()
    cond = torch.randn(1, 2048, 5)
    noise = torch.randn(1, 256, 32)
    with torch.no_grad():
        a = gen(cond, noise, torch.tensor([0]))
        cond[:, :8] += 5
        b = gen(cond, noise, torch.tensor([0]))
    assert not torch.allclose(a[:, :8], b[:, :8])
    assert torch.allclose(a[:, 1024:], b[:, 1024:])


def test_same_seed_same_dance_other_seed_other_dance(tmp_path):
    model = load_model(_model(tmp_path))
    cond = _cond(200)
    a = generate_from_conditioning(cond, "a", 3, model)
    b = generate_from_conditioning(cond, "a", 3, model)
    c = generate_from_conditioning(cond, "a", 4, model)
    assert np.array_equal(a.rotations, b.rotations)
    assert np.abs(a.rotations - c.rotations).max() > 1e-3
    assert a.frames == 200 and a.fps == 30


def test_noise_can_be_held_for_a_phrase():
    """``train --noise-hold 8``: one noise draw per 8 coarse frames (64 frames, about 2 s);
    by default (the shipped file) one per coarse frame, the same draws as before."""
    hold = 8
    gen = Generator(ModelConfig(cond_dims=5, styles=2, width=16, noise_hold=hold))
    z = gen.noise(1, 300, generator=torch.Generator().manual_seed(0))
    assert z.shape == (1, gen.noise_length(300), 32)
    assert torch.equal(z[:, :hold], z[:, :1].expand(-1, hold, -1))
    assert not torch.equal(z[:, hold - 1], z[:, hold])
    per_frame = Generator(ModelConfig(cond_dims=5, styles=2, width=16))
    assert torch.equal(per_frame.noise(1, 300, generator=torch.Generator().manual_seed(0)),
                       torch.randn(1, 38, 32, generator=torch.Generator().manual_seed(0)))


def test_bad_style_bad_files_and_empty_range(tmp_path):
    path = _model(tmp_path)
    model = load_model(path)
    with pytest.raises(ChoreoError, match="available styles: a, b"):
        generate_from_conditioning(_cond(50), "tango", 0, model)
    with pytest.raises(ChoreoError, match="empty"):
        generate_from_conditioning(_cond(0), "a", 0, model)
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ChoreoError, match="corrupt"):
        load_model(corrupt)
    pickled = tmp_path / "weights.safetensors"
    torch.save({"x": torch.zeros(2)}, pickled)  # a pickle, not safetensors
    with pytest.raises(ChoreoError):
        load_model(pickled)
    other = tmp_path / "other.safetensors"
    bigger = Generator(ModelConfig(cond_dims=5, styles=2, width=24))
    bigger.cfg = ModelConfig(cond_dims=5, styles=2, width=16)  # weights and config disagree
    save_model(other, bigger, model[1], STYLES)
    with pytest.raises(ChoreoError, match="does not match"):
        load_model(other)


def test_nan_guard(tmp_path):
    generator, stats, styles, meta = load_model(_model(tmp_path))
    stats = dict(stats, std=torch.full((FEATURES,), float("nan")))
    with pytest.raises(ChoreoError, match="NaN"):
        generate_from_conditioning(_cond(40), "a", 0, (generator, stats, styles, meta))


def test_training_runs_resumes_and_is_deterministic(tiny_data, tmp_path):
    cfg = TrainConfig(steps=2, batch=4, width=16, save_every=1)
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    cache, logs = tmp_path / "set.npz", []
    data = cached_training_set(tiny_data, cache=cache, log=lambda *_: None)
    again = cached_training_set(tiny_data, cache=cache, log=logs.append)
    assert cache.exists() and any("from cache" in line for line in logs)
    assert all(np.array_equal(x, y) for x, y in zip(data.feats, again.feats))
    assert again.as_recorded == data.as_recorded and 0 < sum(data.as_recorded) < len(data.feats) / 4
    # fast-pulsing clips come again, counted at half time
    half = [i for i in range(1, len(again.feats)) if np.array_equal(again.feats[i], again.feats[i - 1])]
    assert half and all(again.cond[i - 1][0, 4] * 200 >= HALF_TIME_FROM_BPM for i in half)
    assert all(np.isclose(2 * again.cond[i][0, 4], again.cond[i - 1][0, 4]) for i in half)
    feats, cond, style = next(Batches(again, 4, 0))
    assert feats.shape == (4, WINDOW, FEATURES) and cond.shape[:2] == (4, WINDOW)
    heading = torch.atan2(feats[..., 1], feats[..., 0])  # pelvis left axis, per frame
    assert torch.atan2(heading.sin().mean(1), heading.cos().mean(1)).abs().max() < 1e-3
    quiet = dict(log=lambda *_: None, data=again)
    assert train(tiny_data, a, cfg, **quiet) == 2
    assert train(tiny_data, b, cfg, **quiet) == 2
    wa, wb = load_model(a)[0].state_dict(), load_model(b)[0].state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    gen, stats, styles, meta = load_model(a)
    assert styles == ["follow", "lead"] and meta["step"] == "2"
    assert stats["energy_quantiles"].shape == (2, 101) and stats["energy_beat_dip"].shape == (2, 20)
    assert stats["style_energy_offset"].shape == (2,) and "style_gain" not in stats  # engine.calibrate
    more = TrainConfig(steps=3, batch=4, width=16, save_every=1)
    assert train(tiny_data, a, more, resume=True, **quiet) == 3
    ablated = TrainConfig(steps=1, batch=4, width=16, sync=False, attention=False, structure=False)
    assert train(tiny_data, tmp_path / "c.safetensors", ablated, **quiet) == 1


def test_fine_tuning_starts_from_a_model_file(tiny_data, tmp_path, capsys):
    quiet = dict(log=lambda *_: None, data=cached_training_set(tiny_data, log=lambda *_: None))
    base, tuned = tmp_path / "base.safetensors", tmp_path / "tuned.safetensors"
    train(tiny_data, base, TrainConfig(steps=2, batch=4, width=16), **quiet)
    zero_lr = TrainConfig(steps=1, batch=4, width=16, lr_g=0.0, average=1.0)
    train(tiny_data, tuned, zero_lr, init=base, **quiet)
    wa, wb = load_model(base)[0].state_dict(), load_model(tuned)[0].state_dict()
    params = [k for k in wa if "running" not in k and "num_batches" not in k]
    assert all(torch.equal(wa[k], wb[k]) for k in params)  # no step taken: the base weights
    # an ablation without self-attention starts from the full model's other layers
    no_attention = TrainConfig(steps=1, batch=4, width=16, lr_g=0.0, average=1.0, attention=False)
    train(tiny_data, tmp_path / "ablated.safetensors", no_attention, init=base, **quiet)
    wc = load_model(tmp_path / "ablated.safetensors")[0].state_dict()
    assert not [k for k in wc if k.startswith("attn.")] and [k for k in wa if k.startswith("attn.")]
    assert all(torch.equal(wa[k], wc[k]) for k in params if k in wc)
    with pytest.raises(ChoreoError, match="does not match"):
        train(tiny_data, tmp_path / "wide.safetensors", TrainConfig(steps=1, batch=4, width=32),
              init=base, **quiet)
    # the command line's loss-weight override names the losses it knows
    assert main(["train", "--data", str(tiny_data), "--out", str(tmp_path / "x.safetensors"),
                 "--weight", "recon=1"]) == 2
    err = capsys.readouterr().err
    assert "unknown loss 'recon'" in err and "losses: adv, fm, rec," in err


def test_moving_average_of_the_generator(tmp_path):
    cfg = ModelConfig(cond_dims=5, styles=2, width=16)
    torch.manual_seed(0)
    live, average = Generator(cfg), Generator(cfg)
    before = [p.clone() for p in average.parameters()]
    live.train()(torch.zeros(2, 64, 5), torch.randn(2, live.noise_length(64), cfg.noise_dims),
                 torch.tensor([0, 1]))  # moves the batch-norm statistics
    update_average(average, live, 0.9)
    for a, b, p in zip(average.parameters(), before, live.parameters()):
        assert torch.allclose(a, 0.9 * b + 0.1 * p)
    assert all(torch.equal(a, b) for a, b in zip(average.buffers(), live.buffers()))
    # a checkpoint keeps the average apart from the live weights, and restores both
    D = Discriminator(cfg)
    path = tmp_path / "ckpt.safetensors"
    save_model(path, live, {"mean": torch.zeros(FEATURES)}, STYLES, discriminator=D, average=average)
    assert any(k.startswith("A.") for k in read_file(path)[0])
    live2, average2 = Generator(cfg), Generator(cfg)
    restore_training(path, live2, Discriminator(cfg), {}, average2)
    assert all(torch.equal(a, b) for a, b in zip(average2.state_dict().values(), average.state_dict().values()))
    assert all(torch.equal(a, b) for a, b in zip(live2.state_dict().values(), live.state_dict().values()))


def test_energy_is_measured_against_the_style_so_a_fast_take_has_more(shared_data):
    """A take and the same take played 1.6x slower, in one style: the slow copy gets
    less energy (a per-clip scale would give both the same [0, 1] range), and the
    style's 99th-percentile speed maps to 1."""
    take = resample(load_motion(shared_data / "mocap" / "cmu_salsa" / "61_05_scaled.bvh.gz"), 30.0)
    fast = motion_rhythm(take)
    slow = motion_rhythm(time_stretch(take, 1 / 1.6))
    assert np.isclose(np.percentile(slow.energy, 99), 1.0, atol=0.02)  # per clip: same range
    a, b = style_level_energy([fast, slow], [0, 0])
    assert a.energy.max() == 1.0 and np.percentile(b.energy, 99) < 0.75
    assert b.energy.mean() < 0.7 * a.energy.mean()
    np.testing.assert_array_equal(a.speed, fast.speed)
    alone = style_level_energy([fast, slow], [0, 1])  # each its own style: its own scale
    assert np.isclose(np.percentile(alone[1].energy, 99), 1.0, atol=0.02)

