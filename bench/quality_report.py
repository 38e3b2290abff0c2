"""Quality of generated dances against real mocap and two baselines.

    python bench/quality_report.py [--model M] [--seeds 2] [--out docs] [--sets shared held-out dev]

Writes docs/quality.md (the tables), docs/quality.json and docs/plots/*.png
(beats and energy timelines, contact sheets). Two song sets, neither used for
training: the four shared CC BY songs, which steered development choices over
many sessions, and fifteen held-out recordings (tests/data/music_heldout),
measured once after each choice (their pop skates were diagnosed once, see
engine/assets/MODEL_CARD.md). Choices are made on the dev tracks (``--sets
dev``, bench/dev_tracks.py). Generated dances are compared with held-out real takes
of the same style (engine/assets/heldout_styles.json). Baselines, as DESIGN.md
defines them: real training takes laid on the song with no sync ("unsynced"),
and the same takes beat-warped onto the song's beats ("warped",
engine.sync.beat_warp). BAS is reported beside its chance level: the same
motion scored against another song's beats.

Div_k is judged per style, each style's generated clips against that style's
held-out takes (both cut every second, normalised by the whole real set), as
every other naturalness figure is. The pooled Div_k (all styles' clips
together, in the distribution table) is not comparable with the real set's: the
generated set holds each style equally, the real set is mostly salsa (its long
takes), whose clips lie close together. Beside each style's target, its
training takes' Div_k (all together, and within one take) shows how far the
style's real range reaches: two held-out takes can be far narrower.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import metrics as M  # noqa: E402
from engine import metrics_features as MF  # noqa: E402
from engine.audio import analyze  # noqa: E402
from engine.checkpoint import load_model  # noqa: E402
from engine.corpus import style_files  # noqa: E402
from engine.generate import FPS, amplitude_curve, generate_from_conditioning, music_conditioning  # noqa: E402
from engine.motion import load_motion  # noqa: E402
from engine.normalize import resample  # noqa: E402
from engine.sync import beat_warp  # noqa: E402
from engine.validate import validate  # noqa: E402

from dev_tracks import DEV_DIR  # noqa: E402  (bench/, beside this file)

DATA = ROOT.parent / "shared" / "data"
SONG_SETS = {
    "shared": [DATA / "music" / name for name in (
        "Kevin_MacLeod_-_Vibe_Ace.hq.ogg", "Kevin_MacLeod_-_P_I_Tchaikovsky_Dance_of_the_Sugar_Plum_Fairy.hq.ogg",
        "808kick120bpm.mp3", "sorohanro_-_solo-trumpet-06.hq.ogg")],
    "held-out": sorted((ROOT / "tests" / "data" / "music_heldout").glob("*.ogg")),
    "dev": sorted(DEV_DIR.glob("*.ogg")),  # fetched by bench/dev_tracks.py, not committed
}
CLIP_SECONDS = 5.0  # EDGE's clip length for FID and diversity
# The held-out takes give 29 disjoint 5 s clips, fewer than the 72 kinetic features:
# their covariance would be singular. The real reference set takes a 5 s clip every
# second (129 clips); the sets scored against it keep EDGE's disjoint clips.
REFERENCE_STRIDE = 1.0
WITHIN_TAKE_FRAMES = int(8 * FPS)  # a take gives at least 4 clips to compare


def load_takes(spec: str, style: str):
    files = style_files(DATA / "mocap", ROOT / "engine" / "assets" / spec)[style]
    return [resample(load_motion(f), FPS) for f in files]


def crop(motion, frames: int):
    """At most the first ``frames`` frames (a shorter take is scored over its own
    length: BAS drops the music beats it does not cover)."""
    return motion.slice(0, min(frames, motion.frames))


def clips(positions: np.ndarray, stride_seconds: float = CLIP_SECONDS):
    n = int(CLIP_SECONDS * FPS)
    step = int(stride_seconds * FPS)
    return [positions[i:i + n] for i in range(0, len(positions) - n + 1, step)]


def naturalness(motions):
    """Mean speed, p90 speed, kinetic beat rate, jitter, PFC, foot skate, bone-length
    variation, the constraint validator's errors per minute (every check, joint
    limits on the rotations included) and its self-penetration findings per minute
    (warnings and errors: limbs passing through each other) over a set of Motions.

    Foot skate pools the set's foot-steps (skating steps / contact steps over all of
    it; a dance with two contact steps would otherwise weigh as much as one with a
    thousand), with the contact heights measured from each motion's resting foot
    level (metrics.contact_ground): generated and converted feet rest their ankle
    above the fixed 8 cm, which would see almost no contact."""
    rows, skating, steps = [], 0, 0
    for motion in motions:
        p = motion.positions
        mean, p90 = M.joint_speed_stats(p, FPS)
        report, minutes = validate(motion), len(p) / FPS / 60
        crossings = [v for v in report.find("self_penetration") if v.severity != "info"]
        rows.append([mean, p90, M.kinetic_beat_rate(p, FPS), M.jitter(p, FPS), M.pfc(p, FPS),
                     M.bone_length_variation(p), len(report.errors) / minutes, len(crossings) / minutes])
        slid, n = M.foot_skate_steps(p, FPS, ground=M.contact_ground(p))
        skating, steps = skating + slid, steps + n
    out = dict(zip(["speed_mean", "speed_p90", "beat_rate", "jitter", "pfc", "bone_var",
                    "validator_errors", "self_penetration"], np.mean(rows, 0)))
    out["foot_skate"] = skating / steps if steps else 0.0
    out["contact_steps"] = steps
    return out


def features(positions_list, stride_seconds: float = CLIP_SECONDS):
    cl = [c for p in positions_list for c in clips(p, stride_seconds)]
    return (np.stack([MF.kinetic_features(c, FPS) for c in cl]),
            np.stack([MF.geometric_features(c, FPS) for c in cl]))


def pose_gaps(gen, seeds: int, takes) -> dict:
    """How different two seeds' dances to one song are (metrics.pose_gap, seeds 0
    and 1, mean over the songs), beside two different takes of the style (mean over
    pairs of takes); ``gen`` holds each song's seeds in turn."""
    pairs = [(a, b) for i, a in enumerate(takes) for b in takes[i + 1:]]
    return {"seeds": float(np.mean([M.pose_gap(gen[i].positions, gen[i + 1].positions)
                                    for i in range(0, len(gen), seeds)])) if seeds > 1 else float("nan"),
            "takes": float(np.mean([M.pose_gap(a.positions, b.positions) for a, b in pairs]))}


def evaluate(model_path, seeds: int, out_dir: Path, songs: list[Path], plot: bool) -> dict:
    """Every figure of the report for one song set (plots of its first song when ``plot``)."""
    model = load_model(model_path)
    styles = model[2]
    music = [analyze(song, fps=FPS) for song in songs]
    results, plots = {}, []
    real_all, gen_all, unsync_all, warp_all, by_style = [], [], [], [], {}
    for style in styles:
        real = load_takes("heldout_styles.json", style)
        train = load_takes("shipped_styles.json", style)
        gen, unsync, warped, bas = [], [], [], {"model": [], "model_chance": [], "unsynced": [],
                                                  "unsynced_chance": [], "warped": [], "warped_chance": []}
        for i, song in enumerate(songs):
            mus, other = music[i], music[(i + 1) % len(songs)]
            cond = music_conditioning(mus, model, style)
            for seed in range(seeds):
                m = generate_from_conditioning(cond, style, seed, model, amplitude_curve(mus, 1.0))
                u = crop(train[(i + seed) % len(train)], m.frames)
                w = beat_warp(u, mus.beats)  # onto every beat, as DESIGN.md's baseline
                for key, motion in (("model", m), ("unsynced", u), ("warped", w)):
                    bas[key].append(M.bas(motion.positions, FPS, mus.beats))
                    bas[key + "_chance"].append(M.bas(motion.positions, FPS, other.beats))
                gen.append(m)
                unsync.append(u)
                warped.append(w)
                if plot and seed == 0 and i == 0:
                    plots.append(plot_timeline(out_dir, style, song.name, mus, m, cond))
                    plots.append(contact_sheet(out_dir, style, m, real[0]))
        results[style] = {
            "bas": {k: float(np.nanmean(v)) for k, v in bas.items()},
            "real": naturalness(real), "model": naturalness(gen),
            "unsynced": naturalness(unsync), "warped": naturalness(warped),
            "pose_gap": pose_gaps(gen, seeds, train),
        }
        real_pos, gen_pos = [r.positions for r in real], [g.positions for g in gen]
        by_style[style] = (gen_pos, real_pos, [t.positions for t in train])
        real_all += real_pos
        gen_all += gen_pos
        unsync_all += [u.positions for u in unsync]
        warp_all += [w.positions for w in warped]
    rk, rg = features(real_all, REFERENCE_STRIDE)
    for style, (gen, real_pos, train_pos) in by_style.items():
        div = {source: MF.diversity(features(pos, REFERENCE_STRIDE)[0], rk)
               for source, pos in (("model", gen), ("real", real_pos), ("train", train_pos))}
        div["train_within"] = float(np.mean([MF.diversity(features([p], REFERENCE_STRIDE)[0], rk)
                                             for p in train_pos if len(p) >= WITHIN_TAKE_FRAMES]))
        results[style]["div_k"] = div
    dist = {}
    for name, pos in (("model", gen_all), ("unsynced", unsync_all), ("warped", warp_all), ("real", real_all)):
        k, g = features(pos)
        dist[name] = {"fid_k": MF.fid(rk, k), "fid_g": MF.fid(rg, g),
                      "div_k": MF.diversity(k, rk), "div_g": MF.diversity(g, rg)}
    return {"styles": results, "distribution": dist, "plots": plots, "seeds": seeds,
            "songs": [song.name for song in songs]}


def plot_timeline(out_dir: Path, style: str, song: str, mus, motion, cond) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from engine.rhythm import motion_rhythm

    t = np.arange(motion.frames) / FPS
    rhythm = motion_rhythm(motion)
    fig, (a, b) = plt.subplots(2, 1, figsize=(10, 4.5), sharex=True)
    span = t[-1] if t[-1] < 20 else 20
    for beat in mus.beats[mus.beats < span]:
        a.axvline(beat, color="tab:blue", alpha=0.5)
    for kb in M.kinetic_beats(motion.positions, FPS):
        if kb < span:
            a.axvline(kb, color="tab:red", ymin=0.0, ymax=0.5)
    a.plot(t, rhythm.speed / rhythm.speed.max(), color="k", lw=1)
    a.set_title(f"{style} on {song[:30]}: music beats (blue), kinetic beats (red), joint speed")
    b.plot(t, mus.rms[: motion.frames], label="music energy (RMS)", alpha=0.6)
    b.plot(t, cond[: motion.frames, 3], label="as the style's motion energy (generator input)")
    b.plot(t, rhythm.energy, label="motion energy")
    b.legend(loc="upper right")
    b.set_xlim(0, span)
    b.set_xlabel("seconds")
    path = out_dir / "plots" / f"timeline_{style}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return str(path.relative_to(out_dir))


def contact_sheet(out_dir: Path, style: str, generated, real, frames: int = 8, step: float = 0.5) -> str:
    """Stick figures every ``step`` seconds, front view: generated above, real below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from engine.skeleton import SMPL_PARENTS

    fig, axes = plt.subplots(2, frames, figsize=(1.6 * frames, 4.2))
    for row, (label, motion) in enumerate((("generated", generated), ("real", real))):
        pos = motion.positions
        for k in range(frames):
            ax = axes[row, k]
            p = pos[min(int((2 + k * step) * FPS), len(pos) - 1)]
            p = p - [p[0, 0], p[0, 1], 0]
            for j, parent in enumerate(SMPL_PARENTS[1:], start=1):
                side = "tab:blue" if j in (1, 4, 7, 10, 13, 16, 18, 20, 22) else "tab:red"
                ax.plot(p[[parent, j], 0], p[[parent, j], 2], color=side if j > 3 else "k", lw=2)
            ax.set_xlim(-1, 1)
            ax.set_ylim(-0.05, 2.0)
            ax.set_aspect("equal")
            ax.axis("off")
            ax.set_title(f"{label} {2 + k * step:.1f}s", fontsize=7)
    path = out_dir / "plots" / f"contact_{style}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    plt.close(fig)
    return str(path.relative_to(out_dir))


def _within(value, real, tol):
    return abs(value - real) <= tol * abs(real)


def targets(res: dict) -> list[tuple[str, str, bool]]:
    """(criterion, measured, met) for each of the issue's quality targets."""
    rows = []
    for style, r in res["styles"].items():
        b, m, real = r["bas"], r["model"], r["real"]
        rows += [
            (f"{style}: BAS >= 0.24", f"{b['model']:.3f}", b["model"] >= 0.24),
            (f"{style}: BAS - chance >= 0.10", f"{b['model'] - b['model_chance']:.3f}",
             b["model"] - b["model_chance"] >= 0.10),
            (f"{style}: mean speed within 25% of real", f"{m['speed_mean']:.3f} vs {real['speed_mean']:.3f}",
             _within(m["speed_mean"], real["speed_mean"], 0.25)),
            (f"{style}: p90 speed within 25% of real", f"{m['speed_p90']:.3f} vs {real['speed_p90']:.3f}",
             _within(m["speed_p90"], real["speed_p90"], 0.25)),
            (f"{style}: kinetic-beat rate within 25% of real", f"{m['beat_rate']:.2f} vs {real['beat_rate']:.2f}",
             _within(m["beat_rate"], real["beat_rate"], 0.25)),
            (f"{style}: jitter <= 1.3x real", f"{m['jitter']:.1f} vs {real['jitter']:.1f}",
             m["jitter"] <= 1.3 * real["jitter"]),
            (f"{style}: PFC <= 1.5 and <= 1.5x real", f"{m['pfc']:.3f} vs {real['pfc']:.3f}",
             m["pfc"] <= min(1.5, 1.5 * real["pfc"])),
            (f"{style}: foot skate <= 10%", f"{m['foot_skate']:.3f} of {m['contact_steps']} steps",
             m["foot_skate"] <= 0.10),
            (f"{style}: bone lengths constant", f"{m['bone_var']:.1e}", m["bone_var"] < 1e-8),
            (f"{style}: Div_k within 20% of real", f"{r['div_k']['model']:.2f} vs {r['div_k']['real']:.2f}",
             _within(r["div_k"]["model"], r["div_k"]["real"], 0.20)),
        ]
    d = res["distribution"]
    for key in ("fid_k", "fid_g"):
        base = min(d["unsynced"][key], d["warped"][key])
        rows.append((f"FID_{key[-1]} below both baselines",
                     f"{d['model'][key]:.1f} vs {d['unsynced'][key]:.1f} / {d['warped'][key]:.1f}",
                     d["model"][key] < base))
    return rows


def to_markdown(sets: dict[str, dict]) -> str:
    """The report: one targets table with a column pair per song set, then each set's tables."""
    rows = {name: targets(res) for name, res in sets.items()}
    first = next(iter(sets.values()))
    lines = ["# Quality of generated dances", "",
             "Regenerate with `python bench/quality_report.py` (see its docstring for the protocol).", ""]
    for name, res in sets.items():
        lines.append(f"- **{name}** songs ({len(res['songs'])}): {', '.join(res['songs'])}; "
                     f"{res['seeds']} seeds per song and style.")
    lines += ["", "The shared songs steered development choices over many sessions. The held-out songs "
              "(tests/data/music_heldout) are measured once after each choice, which is made on the dev "
              "tracks (bench/dev_tracks.py); their figures are the honest ones.",
              "", "## Targets (issue: music-conditioned dance GAN)", "",
              "| criterion | " + " | ".join(f"{name}: measured | met" for name in sets) + " |",
              "|---|" + "---|---|" * len(sets)]
    for i, (criterion, *_) in enumerate(next(iter(rows.values()))):
        cells = [f"{rows[name][i][1]} | {'yes' if rows[name][i][2] else '**no**'}" for name in sets]
        lines.append(f"| {criterion} | " + " | ".join(cells) + " |")
    lines.append("| **met** | " + " | ".join(f"| **{sum(ok for *_, ok in rows[name])} of {len(rows[name])}**"
                                            for name in sets) + " |")
    for name, res in sets.items():
        lines += ["", f"## {name.capitalize()} songs", ""] + _set_tables(res)
    lines += ["", "## Plots", "",
              f"Timelines: music beats against kinetic beats, music energy against motion energy "
              f"(first 20 s of {first['songs'][0]}). Contact sheets: stick figures, front view, every 0.5 s "
              "from 2 s in; generated (top) and a held-out real take (bottom); left side blue.",
              ""] + [f"![{Path(p).stem}]({p})" for res in sets.values() for p in res["plots"]]
    return "\n".join(lines) + "\n"


def _set_tables(res: dict) -> list[str]:
    """Sync, naturalness and distribution tables of one song set."""
    lines = ["### Sync (BAS, Bailando protocol; chance = the same motion against another song's beats)", "",
             "| style | model | chance | unsynced real | chance | warped real | chance |",
             "|---|---|---|---|---|---|---|"]
    for style, r in res["styles"].items():
        b = r["bas"]
        lines.append(f"| {style} | {b['model']:.3f} | {b['model_chance']:.3f} | {b['unsynced']:.3f} | "
                     f"{b['unsynced_chance']:.3f} | {b['warped']:.3f} | {b['warped_chance']:.3f} |")
    lines += ["", "### Naturalness against held-out real takes of the same style", "",
              "speeds in m/s, beat rate in kinetic beats per second, jitter in m/s³ at 30 fps, "
              "PFC per EDGE, foot skate as the share of all the set's contact steps that skate "
              "(contact heights from each motion's resting foot level, metrics.contact_ground), "
              "validator errors per minute of dance (engine.validate, joint limits included), "
              "self-penetration warnings and errors per minute (limbs through each other)", "",
              "| style | source | speed mean | speed p90 | beat rate | jitter | PFC | foot skate | bone-length var "
              "| validator errors/min | self-penetration/min |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for style, r in res["styles"].items():
        for source in ("real", "model", "unsynced", "warped"):
            n = r[source]
            lines.append(f"| {style} | {source} | {n['speed_mean']:.3f} | {n['speed_p90']:.3f} | "
                         f"{n['beat_rate']:.2f} | {n['jitter']:.1f} | {n['pfc']:.3f} | "
                         f"{n['foot_skate']:.3f} | {n['bone_var']:.1e} | {n['validator_errors']:.1f} | "
                         f"{n['self_penetration']:.1f} |")
    lines += ["", "### Distribution (AIST++ features, Bailando normalisation; disjoint 5 s clips against "
              "held-out real takes cut every second; features constant over the real set left out; "
              "the pooled Div_k is not a target, see the module docstring)", "",
              "| source | FID_k | FID_g | Div_k | Div_g |", "|---|---|---|---|---|"]
    for name, d in res["distribution"].items():
        lines.append(f"| {name} | {d['fid_k']:.2f} | {d['fid_g']:.2f} | {d['div_k']:.2f} | {d['div_g']:.2f} |")
    lines += ["", "### Div_k per style (5 s clips cut every second, normalised by the held-out real set)", "",
              "The target compares the model with the held-out takes. The style's training takes show "
              "how far its real range reaches: all of them together, and within one take (the mean over "
              "takes of at least 8 s).", "",
              "| style | model | held-out takes (target) | training takes | within one training take |",
              "|---|---|---|---|---|"]
    for style, r in res["styles"].items():
        d = r["div_k"]
        lines.append(f"| {style} | {d['model']:.2f} | {d['real']:.2f} | {d['train']:.2f} | {d['train_within']:.2f} |")
    lines += ["", "### Seeds: how different two seeds' dances to one song are", "",
              "Mean joint distance in the body frame (metrics.pose_gap, metres): seeds 0 and 1 on each "
              "song, beside two different training takes of the style.", "",
              "| style | two seeds, one song | two different takes |", "|---|---|---|"]
    for style, r in res["styles"].items():
        g = r["pose_gap"]
        lines.append(f"| {style} | {g['seeds']:.3f} | {g['takes']:.3f} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--model")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "docs"))
    parser.add_argument("--sets", nargs="+", choices=list(SONG_SETS), default=["shared", "held-out"])
    args = parser.parse_args()
    if "dev" in args.sets and not SONG_SETS["dev"]:
        parser.error(f"no dev tracks in {DEV_DIR}: run python bench/dev_tracks.py first")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sets = {name: evaluate(args.model, args.seeds, out, songs, plot=name == "shared")
            for name, songs in SONG_SETS.items() if name in args.sets}
    (out / "quality.json").write_text(json.dumps(sets, indent=2, default=float))
    (out / "quality.md").write_text(to_markdown(sets))
    print(to_markdown(sets))
    return 0


if __name__ == "__main__":
    sys.exit(main())
