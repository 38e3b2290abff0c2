"""Training corpora: a folder of BVH files or AIST++ pkls, grouped into styles.

Styles come from a ``styles.json`` in the folder (``{"style": ["glob", ...]}``),
or else from each file's parent folder name. The shipped model's four styles
are described by ``engine/assets/shipped_styles.json`` over the shared CMU
mocap.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ChoreoError
from engine.motion import Motion, load_motion
from engine.normalize import resample

MOTION_PATTERNS = ("*.bvh", "*.bvh.gz", "*.pkl")
SHIPPED_STYLES = Path(__file__).parent / "assets" / "shipped_styles.json"


@dataclass
class Corpus:
    styles: list[str]
    motions: list[Motion]
    style_ids: list[int]


def style_files(data_dir: Path, styles_file: Path | None = None) -> dict[str, list[Path]]:
    """Map each style to its files, sorted for determinism."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise ChoreoError(f"{data_dir}: not a folder of motion files")
    styles_file = styles_file or (data_dir / "styles.json")
    groups: dict[str, list[Path]] = {}
    if Path(styles_file).exists():
        spec = json.loads(Path(styles_file).read_text())
        for style, globs in spec.items():
            groups[style] = sorted({p for g in globs for p in data_dir.glob(g)})
    else:
        for pattern in MOTION_PATTERNS:
            for path in data_dir.rglob(pattern):
                groups.setdefault(path.parent.name, []).append(path)
        groups = {k: sorted(v) for k, v in sorted(groups.items())}
    groups = {k: v for k, v in groups.items() if v}
    if not groups:
        raise ChoreoError(f"{data_dir}: no .bvh, .bvh.gz or AIST++ .pkl files found")
    return groups


def load_corpus(data_dir, fps: float = 30.0, styles_file=None, log=print) -> Corpus:
    """Load and resample every take; unreadable takes are reported and skipped."""
    styles, motions, ids = [], [], []
    for style, paths in style_files(Path(data_dir), styles_file).items():
        styles.append(style)
        for path in paths:
            try:
                motion = resample(load_motion(path), fps)
            except ChoreoError as exc:
                log(f"skipping {path.name}: {exc}")
                continue
            motions.append(motion)
            ids.append(len(styles) - 1)
    if not motions:
        raise ChoreoError(f"{data_dir}: none of the motion files could be read")
    return Corpus(styles, motions, ids)
