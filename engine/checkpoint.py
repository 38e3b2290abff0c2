"""Model files: safetensors only (loading never unpickles).

A model file holds the generator's weights, the feature normalisation and the
per-style ranges as tensors; the model config, style names and format
version sit in the safetensors metadata as JSON. Training checkpoints add the
discriminator, both optimisers' states and the generator's moving average
(engine.train) the same way.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from safetensors import safe_open

from engine.errors import ChoreoError
from engine.model import Generator, ModelConfig

FORMAT = "choreo-gan-1"
DEFAULT_MODEL = Path(__file__).parent / "assets" / "choreo_dance_gan.safetensors"


def _prefixed(prefix: str, state: dict) -> dict:
    return {f"{prefix}.{k}": v.detach().contiguous().cpu() for k, v in state.items()}


def _optimizer_tensors(prefix: str, opt: torch.optim.Optimizer) -> tuple[dict, dict]:
    """Split an optimiser state into tensors and a JSON-able skeleton."""
    state = opt.state_dict()
    tensors, skeleton = {}, {"param_groups": state["param_groups"], "state": {}}
    for pid, entries in state["state"].items():
        skeleton["state"][str(pid)] = {}
        for key, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.{pid}.{key}"] = value.contiguous().cpu()
                skeleton["state"][str(pid)][key] = "tensor"
            else:
                skeleton["state"][str(pid)][key] = value
    return tensors, skeleton


def _restore_optimizer(opt, prefix: str, skeleton: dict, tensors: dict) -> None:
    state = {"param_groups": skeleton["param_groups"], "state": {}}
    for pid, entries in skeleton["state"].items():
        state["state"][int(pid)] = {
            k: tensors[f"{prefix}.{pid}.{k}"] if v == "tensor" else v for k, v in entries.items()
        }
    opt.load_state_dict(state)


def save_model(path, generator: Generator, stats: dict, styles: list[str], extra: dict | None = None,
               discriminator=None, optimizers: dict | None = None, step: int = 0,
               average: Generator | None = None) -> None:
    """Write a model (and, for checkpoints, the training state) to safetensors."""
    tensors = _prefixed("G", generator.state_dict())
    tensors.update({f"stats.{k}": v.contiguous().cpu() for k, v in stats.items()})
    meta = {"format": FORMAT, "config": json.dumps(generator.cfg.to_dict()),
            "styles": json.dumps(styles), "step": str(step), "extra": json.dumps(extra or {})}
    if discriminator is not None:
        tensors.update(_prefixed("D", discriminator.state_dict()))
    if average is not None:
        tensors.update(_prefixed("A", average.state_dict()))
    for name, opt in (optimizers or {}).items():
        opt_tensors, skeleton = _optimizer_tensors(f"opt.{name}", opt)
        tensors.update(opt_tensors)
        meta[f"opt.{name}"] = json.dumps(skeleton)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(str(path) + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)


def read_file(path) -> tuple[dict, dict]:
    """(tensors, metadata) of a Choreo model file, with clear errors."""
    path = Path(path)
    if not path.exists():
        raise ChoreoError(f"{path}: model file not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ChoreoError(f"{path}: corrupt or unreadable model file ({exc})") from exc
    if meta.get("format") != FORMAT:
        raise ChoreoError(f"{path}: not a Choreo model of format {FORMAT} (found {meta.get('format')!r})")
    return tensors, meta


def _load_weights(generator: Generator, tensors: dict, path) -> None:
    weights = {k[2:]: v for k, v in tensors.items() if k.startswith("G.")}
    try:
        generator.load_state_dict(weights)
    except RuntimeError as exc:
        raise ChoreoError(f"{path}: the checkpoint does not match this version of the model code "
                          f"({str(exc).splitlines()[0]})") from exc


def load_model(path=None, device="cpu"):
    """Generator (eval mode), normalisation stats, style names and metadata."""
    path = path or DEFAULT_MODEL
    tensors, meta = read_file(path)
    cfg = ModelConfig(**json.loads(meta["config"]))
    generator = Generator(cfg)
    _load_weights(generator, tensors, path)
    stats = {k[6:]: v.to(device) for k, v in tensors.items() if k.startswith("stats.")}
    return generator.to(device).eval(), stats, json.loads(meta["styles"]), meta


def load_generator(path, generator: Generator, ablated: bool = False) -> None:
    """Load a model file's generator weights into ``generator`` (same config). With
    ``ablated`` the file may also hold layers this generator lacks (self-attention
    switched off); every layer it has must still be in the file."""
    tensors, _ = read_file(path)
    if ablated:
        own = generator.state_dict()
        tensors = {k: v for k, v in tensors.items() if not k.startswith("G.") or k[2:] in own}
    _load_weights(generator, tensors, path)


def restore_training(path, generator, discriminator, optimizers: dict, average=None) -> int:
    """Load a training checkpoint into live objects; returns the step. ``average``
    (the generator's moving average) starts from the generator where the checkpoint
    has none."""
    tensors, meta = read_file(path)
    generator.load_state_dict({k[2:]: v for k, v in tensors.items() if k.startswith("G.")})
    if average is not None:
        prefix = "A." if any(k.startswith("A.") for k in tensors) else "G."
        average.load_state_dict({k[2:]: v for k, v in tensors.items() if k.startswith(prefix)})
    discriminator.load_state_dict({k[2:]: v for k, v in tensors.items() if k.startswith("D.")})
    for name, opt in optimizers.items():
        _restore_optimizer(opt, f"opt.{name}", json.loads(meta[f"opt.{name}"]), tensors)
    return int(meta["step"])
