"""GAN, music-synchronisation and dance-structure losses (all differentiable).

Positions come from forward kinematics on the predicted rotations, so bone
lengths are constant by construction; the losses shape how the joints move.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from engine.features import CONTACT_SLICE
from engine.skeleton import CONTACT_JOINTS, JOINT, SMPL_NAMES

EPS = 1e-6


def d_hinge(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    return F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean()


def g_hinge(fake_scores: torch.Tensor) -> torch.Tensor:
    return -fake_scores.mean()


def feature_matching(real_hidden: torch.Tensor, fake_hidden: torch.Tensor) -> torch.Tensor:
    """Match the discriminator's mean hidden activations over time and batch."""
    return F.l1_loss(fake_hidden.mean((0, 2)), real_hidden.detach().mean((0, 2)))


def joint_speed(pos: torch.Tensor) -> torch.Tensor:
    """(B,T,24,3) -> (B,T) mean joint speed per frame (metres per frame)."""
    v = (pos[:, 1:] - pos[:, :-1]).norm(dim=-1).mean(-1)
    return torch.cat([v[:, :1], v], 1)


def _pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + EPS)


def sync_loss(pos: torch.Tensor, beat_phase: torch.Tensor) -> torch.Tensor:
    """Beat alignment: joint speed should dip on beats (phase 0) and peak
    between them. 1 - correlation of the speed curve with the beat valley
    -cos(2 pi phase), averaged over the batch."""
    speed = joint_speed(pos)
    valley = -torch.cos(2 * torch.pi * beat_phase)
    return (1 - _pearson(speed, valley)).mean()


def energy_loss(pos: torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
    """Structural integrity: motion energy should follow the conditioning energy."""
    speed = F.avg_pool1d(joint_speed(pos)[:, None], 15, 1, 7, count_include_pad=False)[:, 0]
    return (1 - _pearson(speed, energy)).mean()


def smoothness_loss(pos_fake: torch.Tensor, pos_real: torch.Tensor) -> torch.Tensor:
    """Velocity/acceleration continuity: mean jerk above the real window's level, and
    acceleration peaks (99th percentile over joints and frames) above 1.2x the real
    window's, are penalised."""
    def jerk(p):
        return (p[:, 3:] - 3 * p[:, 2:-1] + 3 * p[:, 1:-2] - p[:, :-3]).norm(dim=-1).mean((1, 2))

    def peak(p):
        return torch.quantile((p[:, 2:] - 2 * p[:, 1:-1] + p[:, :-2]).norm(dim=-1).flatten(1), 0.99, dim=1)

    mean_jerk = F.relu(jerk(pos_fake) - 1.1 * jerk(pos_real)).mean() / (jerk(pos_real).mean() + EPS)
    return mean_jerk + F.relu(peak(pos_fake) / (peak(pos_real) + EPS) - 1.2).mean()


LEG_SEGMENTS = tuple((JOINT[f"{side}_{a}"], JOINT[f"{side}_{b}"])  # thigh, shin: left, then right
                     for side in "LR" for a, b in (("hip", "knee"), ("knee", "ankle")))
LEG_CLEARANCE = 0.08  # metres between the left and right leg's axes


def leg_clearance_loss(pos: torch.Tensor) -> torch.Tensor:
    """Legs do not pass through each other: the closest distance between the left and
    right thigh and shin axes (5 points along each) below LEG_CLEARANCE is penalised,
    as a fraction of it."""
    t = torch.linspace(0, 1, 5, device=pos.device)[:, None]

    def points(a, b):
        return pos[..., a, None, :] + t * (pos[..., b, None, :] - pos[..., a, None, :])  # (B, T, 5, 3)

    (la, lb), (lc, ld), (ra, rb), (rc, rd) = LEG_SEGMENTS
    left = torch.cat([points(la, lb), points(lc, ld)], -2).flatten(0, 1)
    right = torch.cat([points(ra, rb), points(rc, rd)], -2).flatten(0, 1)
    closest = torch.cdist(left, right).amin((-1, -2))
    return F.relu(LEG_CLEARANCE - closest).mean() / LEG_CLEARANCE


def speed_stats_loss(pos_fake: torch.Tensor, pos_real: torch.Tensor) -> torch.Tensor:
    """The style's own movement statistics: each window's mean and 90th-percentile
    joint speed, how fast its body speed changes (mean |d speed / dt|, many small
    dips or a few big sweeps), and each joint's mean horizontal and vertical speed
    (the kinetic features' split: hands flapping up and down while the feet stand
    still has a fine mean), match its real window's (log ratio), so the motion is
    neither damped towards the mean pose nor busier than the dancers'."""
    def stats(p):
        d = p[:, 1:] - p[:, :-1]  # (B, T-1, 24, 3)
        v = d.norm(dim=-1)
        flat = v.flatten(1)
        change = (v.mean(-1)[:, 1:] - v.mean(-1)[:, :-1]).abs().mean(1)
        body = torch.stack([flat.mean(1), torch.quantile(flat, 0.9, dim=1), change], 1)
        joints = torch.cat([d[..., :2].norm(dim=-1).mean(1), d[..., 2].abs().mean(1)], 1)  # (B, 48)
        return body, joints

    (fb, fj), (rb, rj) = stats(pos_fake), stats(pos_real)

    def gap(a, b):
        return (torch.log(a + EPS) - torch.log(b + EPS)).abs().mean()

    return gap(fb, rb) + 0.5 * gap(fj + 1e-4, rj + 1e-4)


def _body_frame(pos: torch.Tensor) -> torch.Tensor:
    """(B,T,24,3) joints relative to the pelvis in the hips' frame (x: right hip to
    left hip, horizontal; z: up), so a pose reads the same whichever way it faces."""
    across = pos[..., JOINT["L_hip"], :2] - pos[..., JOINT["R_hip"], :2]
    x = across / (across.norm(dim=-1, keepdim=True) + EPS)
    rel = pos - pos[..., :1, :]
    return torch.stack([(rel[..., :2] * x[..., None, :]).sum(-1),
                        rel[..., 1] * x[..., None, 0] - rel[..., 0] * x[..., None, 1], rel[..., 2]], -1)


UPPER_BODY = [i for i, name in enumerate(SMPL_NAMES) if name.startswith(("spine", "neck", "head"))
              or name.split("_")[-1] in ("collar", "shoulder", "elbow", "wrist", "hand")]


def pose_stats_loss(pos_fake: torch.Tensor, pos_real: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """The style's own upper-body statistics: per style in the batch, the mean and
    spread (over its windows and frames) of each trunk, head and arm joint's place in
    the body frame match the real windows'. A generator that holds its arms in one
    pose all dance long (a mode the discriminator's local patches accept) has the mean
    but not the spread. The legs are left to the footwork's losses."""
    fake, real = _body_frame(pos_fake)[..., UPPER_BODY, :], _body_frame(pos_real)[..., UPPER_BODY, :]
    gaps = []
    for s in torch.unique(style):
        f, r = fake[style == s].flatten(0, 1).flatten(1), real[style == s].flatten(0, 1).flatten(1)
        spread_r = r.std(0) + 0.01
        gaps.append(((f.mean(0) - r.mean(0)).abs() / spread_r).mean()
                    + (torch.log(f.std(0) + 0.01) - torch.log(spread_r)).abs().mean())
    return torch.stack(gaps).mean()


def travel_loss(root_velocity: torch.Tensor) -> torch.Tensor:
    """Net travel: the window's mean horizontal root velocity (metres per frame,
    (B, T, 2)) in m/s. Real windows have none (engine.train.Batches), so a glide
    across the stage is penalised rather than learnt."""
    return root_velocity.mean(1).norm(dim=-1).mean() * 30.0


def range_loss(feats: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Technical range of the style: rotations outside the style's observed
    per-feature range (normalised units) are penalised."""
    rot = feats[..., :144]
    return (F.relu(rot - high[..., :144]) + F.relu(low[..., :144] - rot)).mean()


def contact_loss(pos: torch.Tensor, feats: torch.Tensor, real_contacts: torch.Tensor) -> torch.Tensor:
    """Contact flags match the data, and no skating while a flag is set."""
    logits = feats[..., CONTACT_SLICE]
    bce = F.binary_cross_entropy_with_logits(logits, real_contacts)
    foot = pos[:, :, CONTACT_JOINTS, :2]
    vel = torch.cat([torch.zeros_like(foot[:, :1]), foot[:, 1:] - foot[:, :-1]], 1).norm(dim=-1)
    skate = (torch.sigmoid(logits) * vel).mean() * 30.0  # m/s while in contact
    return bce + skate


def seed_diversity_loss(pos_a: torch.Tensor, pos_b: torch.Tensor, margin: float) -> torch.Tensor:
    """Mode seeking in DSGAN's clipped form: two noise draws for the same
    conditioning should place the joints, in the body frame, at least ``margin``
    metres apart on average. Without it the generator learns to ignore its noise
    (min-of-k reconstruction alone left seeds 1.6-3.1 cm apart: clones in a crowd)."""
    gap = (_body_frame(pos_a) - _body_frame(pos_b)).norm(dim=-1).mean((1, 2))
    return F.relu(margin - gap).mean() / margin


def min_of_k_reconstruction(fakes: list[torch.Tensor], real: torch.Tensor) -> torch.Tensor:
    """L1 to the real window from the best of several noise draws (keeps the
    noise meaningful: different draws may land on different modes)."""
    errors = torch.stack([(f[..., :147] - real[..., :147]).abs().mean((1, 2)) for f in fakes])
    return errors.min(0).values.mean()
