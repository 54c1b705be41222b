"""Draw a subject in a pose: a 64x64 RGB image, drawn at 4x with flat colors and box-downsampled.

Geometry works in complex numbers (x + iy, y down), so turning a vector by an angle is one product.
Lengths are in output pixels at scale 1, from the subject's body plan
(:class:`imposter.toyworld.world.BodyPlan`); a standing figure is 27 to 45 px tall with its accessories.
"""

from __future__ import annotations

import cmath
import math
from dataclasses import dataclass

from PIL import Image, ImageDraw

from imposter.toyworld.world import BACKGROUND, RGB, BodyPlan, Pose, Subject, get_subject

SIZE = 64
SUPERSAMPLE = 4  # draw at 256x256 and average 4x4 blocks: exact-coverage anti-aliasing
GROUND_Y = 56.0  # the lowest point of the figure rests here (plus pose.dy)

# Accessories and face are drawn in the average head's coordinates (``REFERENCE.head_r``) and scaled
# with the subject's head; torso patterns likewise with its torso.
REFERENCE = BodyPlan()
TAIL = (complex(2.8, -1.5), 4.5, 3.5, 1.3)  # root (reference torso), two segment lengths, radius
EYE_R = 1.05

SIDES = {"left": -1, "right": 1}


@dataclass(frozen=True)
class Skeleton:
    """Joint positions in output pixels, plus what the parts need to be drawn."""

    points: dict[str, complex]
    radii: dict[str, float]  # how far each joint's part reaches around it (pixels, scaled)
    upper_turn: complex  # unit rotation of torso, arms and head (tilt + spine)
    unit: float  # pixels per body unit (pose.scale)
    body: BodyPlan


def _turn(degrees: float) -> complex:
    """Unit complex number that turns a vector clockwise on screen by ``degrees``."""
    return cmath.exp(1j * math.radians(degrees))


def _limb_direction(angle: float, side: int) -> complex:
    """Direction of a limb at ``angle`` degrees from hanging down, outward positive on ``side``."""
    a = math.radians(angle)
    return complex(side * math.sin(a), math.cos(a))


def head_center(body: BodyPlan) -> complex:
    """Where the head's center sits above the hip center, for an upright body."""
    return complex(0.0, -(body.torso_high + body.torso_r + body.head_r - 1.2))


def skeleton(pose: Pose, body: BodyPlan = REFERENCE) -> Skeleton:
    """Place every joint of ``body`` in ``pose`` in image pixels.

    Placement rule (the same for every body, so a ground truth stands where its driver stands): the hip
    center is ``pose.dx`` right of the image's center line and the figure's lowest point rests on the
    ground line ``GROUND_Y + pose.dy``; ``pose.scale`` and ``pose.tilt`` act as the camera's zoom and roll.
    """
    upper = _turn(pose.spine)
    shoulder_y = -(body.torso_high + body.shoulder_rise)
    pts: dict[str, complex] = {
        "hip": 0j,
        "torso_low": upper * complex(0, -body.torso_low),
        "torso_high": upper * complex(0, -body.torso_high),
        "head": upper * head_center(body),
    }
    radii = {"hip": 0.0, "torso_low": body.torso_r, "torso_high": body.torso_r, "head": body.head_r}
    for name, side in SIDES.items():
        shoulder_angle, elbow_angle = getattr(pose, f"{name}_shoulder"), getattr(pose, f"{name}_elbow")
        hip_angle, knee_angle = getattr(pose, f"{name}_hip"), getattr(pose, f"{name}_knee")
        shoulder = upper * complex(side * body.shoulder_x, shoulder_y)
        elbow = shoulder + body.upper_arm * upper * _limb_direction(shoulder_angle, side)
        hand = elbow + body.forearm * upper * _limb_direction(shoulder_angle + elbow_angle, side)
        hip = complex(side * body.hip_half, 0)
        knee = hip + body.thigh * _limb_direction(hip_angle, side)
        foot = knee + body.shin * _limb_direction(hip_angle + knee_angle, side)
        pts.update(
            {
                f"{name}_shoulder": shoulder,
                f"{name}_elbow": elbow,
                f"{name}_hand": hand,
                f"{name}_hip": hip,
                f"{name}_knee": knee,
                f"{name}_foot": foot,
            }
        )
        radii.update(
            {
                f"{name}_shoulder": body.arm_r,
                f"{name}_elbow": body.arm_r,
                f"{name}_hand": body.hand_r,
                f"{name}_hip": body.leg_r,
                f"{name}_knee": body.leg_r,
                f"{name}_foot": body.foot_r,
            }
        )
    root, first, second, tail_r = TAIL
    pts["tail_root"] = complex(root.real * body.torso_r / REFERENCE.torso_r, root.imag)
    pts["tail_mid"] = pts["tail_root"] + first * _limb_direction(105, 1)
    pts["tail_tip"] = pts["tail_mid"] + second * _limb_direction(160, 1)
    radii.update(tail_root=tail_r, tail_mid=tail_r, tail_tip=tail_r)

    tilt = _turn(pose.tilt)
    scaled = {k: v * tilt * pose.scale for k, v in pts.items()}
    lowest = max(v.imag + radii[k] * pose.scale for k, v in scaled.items())
    offset = complex(SIZE / 2 + pose.dx, GROUND_Y + pose.dy - lowest)
    return Skeleton({k: v + offset for k, v in scaled.items()}, radii, tilt * upper, pose.scale, body)


def limb_color(subject: Subject) -> RGB:
    """Arms and legs: a darker shade of the main color (lighter for dark subjects), so limbs read over the torso."""
    r, g, b = subject.main
    if _is_dark(subject.main):
        return (r + 60, g + 60, b + 60)
    return (int(r * 0.7), int(g * 0.7), int(b * 0.7))


def _is_dark(color: RGB) -> bool:
    """True for near-black colors, whose shades and eyes must be light instead of dark."""
    return max(color) < 100


class _Painter:
    """Draws flat shapes given in output pixels onto the supersampled canvas."""

    def __init__(self, image: Image.Image) -> None:
        self.draw = ImageDraw.Draw(image)

    def polygon(self, points: list[complex], color: RGB) -> None:
        self.draw.polygon([(p.real * SUPERSAMPLE, p.imag * SUPERSAMPLE) for p in points], fill=color)

    def disc(self, center: complex, radius: float, color: RGB) -> None:
        x, y, r = center.real * SUPERSAMPLE, center.imag * SUPERSAMPLE, radius * SUPERSAMPLE
        self.draw.ellipse((x - r, y - r, x + r, y + r), fill=color)

    def capsule(self, start: complex, end: complex, radius: float, color: RGB) -> None:
        self.polygon(_band(start, end, radius), color)
        self.disc(start, radius, color)
        self.disc(end, radius, color)


def _band(start: complex, end: complex, radius: float) -> list[complex]:
    """The rectangle of half-width ``radius`` around the segment start-end."""
    along = end - start
    across = (along / abs(along) * 1j if abs(along) > 1e-9 else 1j) * radius
    return [start + across, end + across, end - across, start - across]


def _stripe(
    paint: _Painter, start: complex, end: complex, radius: float, t: float, width: float, color: RGB
) -> None:
    """A band across the segment start-end, centered a fraction ``t`` along it."""
    along = end - start
    half = along / abs(along) * width / 2 if abs(along) > 1e-9 else 0j
    center = start + t * along
    paint.polygon(_band(center - half, center + half, radius), color)


def _ellipse(rx: float, ry: float, center: complex = 0j, n: int = 24) -> list[complex]:
    """Polygon of an axis-aligned ellipse (a polygon, so that it can be turned with the body)."""
    return [
        center + complex(rx * math.cos(t), ry * math.sin(t)) for t in (2 * math.pi * k / n for k in range(n))
    ]


def _head_outline(shape: str) -> list[complex]:
    """The head's outline around its center for a head of radius 1, y down."""
    if shape == "square":
        return [complex(-0.9, -0.9), complex(0.9, -0.9), complex(0.9, 0.9), complex(-0.9, 0.9)]
    if shape == "triangle":  # point down, like a cat's face
        return [complex(-1.15, -0.75), complex(1.15, -0.75), complex(0, 1.15)]
    if shape == "diamond":
        return [complex(0, -1.2), complex(1.1, 0), complex(0, 1.2), complex(-1.1, 0)]
    if shape == "hexagon":
        return [1.05 * cmath.exp(1j * math.pi * k / 3) for k in range(6)]
    if shape == "oval":
        return _ellipse(1.25, 0.85)
    return _ellipse(1.0, 1.0)


def _draw_tail(paint: _Painter, sk: Skeleton, subject: Subject) -> None:
    p, radius = sk.points, sk.radii["tail_mid"] * sk.unit
    paint.capsule(p["tail_root"], p["tail_mid"], radius, limb_color(subject))
    paint.capsule(p["tail_mid"], p["tail_tip"], radius, limb_color(subject))
    if subject.pattern == "stripes":
        _stripe(paint, p["tail_mid"], p["tail_tip"], radius, 0.5, 1.4 * sk.unit, subject.accent)


def _draw_limb(
    paint: _Painter,
    sk: Skeleton,
    subject: Subject,
    joints: tuple[str, str, str],
) -> None:
    upper, middle, end = (sk.points[j] for j in joints)
    radius, end_radius = sk.radii[joints[1]], sk.radii[joints[2]]
    color = limb_color(subject)
    paint.capsule(upper, middle, radius * sk.unit, color)
    paint.capsule(middle, end, radius * sk.unit, color)
    if subject.pattern == "stripes":
        for a, b in ((upper, middle), (middle, end)):
            _stripe(paint, a, b, radius * sk.unit, 0.55, 1.5 * sk.unit, subject.accent)
    paint.disc(end, end_radius * sk.unit, subject.accent)


def _draw_torso(paint: _Painter, sk: Skeleton, subject: Subject) -> None:
    low, high, unit, body = sk.points["torso_low"], sk.points["torso_high"], sk.unit, sk.body
    paint.capsule(low, high, body.torso_r * unit, subject.main)
    wide, tall = body.torso_r / REFERENCE.torso_r, body.torso_high / REFERENCE.torso_high
    if subject.pattern == "stripes":
        for t in (0.1, 0.5, 0.9):
            _stripe(paint, low, high, body.torso_r * unit, t, 1.7 * unit, subject.accent)
    elif subject.pattern == "spots":
        for x, y, r in ((-1.8, -3.0, 1.5), (1.9, -5.8, 1.4), (-1.2, -8.8, 1.3), (1.7, -1.5, 1.2)):
            spot = complex(x * wide, y * tall)
            paint.disc(sk.points["hip"] + sk.upper_turn * spot * unit, r * unit, subject.accent)
    elif subject.pattern == "belly":
        center = (low + high) / 2
        belly = _ellipse(2.3 * wide, 3.6 * min(tall, 1.2))
        paint.polygon([center + sk.upper_turn * q * unit for q in belly], subject.accent)
    for name, t in (("collar", 1.0), ("belt", 0.0)):  # a band across the neck, or the waist
        if name in subject.accessories:
            _stripe(paint, low, high, body.torso_r * unit, t, 1.9 * unit, subject.accessory_colour)


def _draw_head(paint: _Painter, sk: Skeleton, subject: Subject) -> None:
    center, turn = sk.points["head"], sk.upper_turn
    unit = sk.unit * sk.body.head_r / REFERENCE.head_r  # accessories are drawn for the reference head

    def at(q: complex) -> complex:
        return center + turn * q * unit

    accessories, extra = set(subject.accessories), subject.accessory_colour
    r = REFERENCE.head_r
    if "ears" in accessories:  # pointed ears, behind the head
        for s in (-1, 1):
            paint.polygon(
                [at(complex(s * 1.3, -3.5)), at(complex(s * 4.6, -2.2)), at(complex(s * 4.4, -6.6))],
                subject.main,
            )
            paint.polygon(
                [at(complex(s * 2.6, -3.9)), at(complex(s * 4.0, -3.3)), at(complex(s * 3.9, -5.3))],
                extra,
            )
    if "floppy_ears" in accessories:
        for s in (-1, 1):
            paint.capsule(at(complex(s * 3.6, -2.6)), at(complex(s * 5.0, 1.2)), 1.6 * unit, extra)
    if "horns" in accessories:
        for s in (-1, 1):
            paint.polygon(
                [at(complex(s * 1.0, -3.6)), at(complex(s * 3.0, -3.2)), at(complex(s * 3.3, -7.6))],
                extra,
            )
    if "antenna" in accessories:
        paint.capsule(at(complex(0, -r)), at(complex(0, -r - 3.0)), 0.75 * unit, extra)
        paint.disc(at(complex(0, -r - 3.4)), 1.5 * unit, extra)
    if "antennae" in accessories:
        for s in (-1, 1):
            paint.capsule(at(complex(s * 1.0, -r)), at(complex(s * 2.8, -r - 3.0)), 0.75 * unit, extra)
            paint.disc(at(complex(s * 2.9, -r - 3.3)), 1.4 * unit, extra)
    if "crest" in accessories:  # a fin on top, behind the head
        paint.polygon(
            [at(complex(-1.6, -r + 0.8)), at(complex(1.6, -r + 0.8)), at(complex(0.6, -r - 3.8))], extra
        )
    if "eyes_up" in accessories:
        for s in (-1, 1):
            paint.disc(at(complex(s * 2.8, -2.6)), 2.2 * unit, subject.main)
    paint.polygon([at(q * r) for q in _head_outline(subject.head)], subject.main)
    eye_color = subject.accent if _is_dark(subject.main) else (20, 20, 20)
    eye_y = -2.8 if "eyes_up" in accessories else -0.9
    for s in (-1, 1):
        paint.disc(at(complex(s * 1.8, eye_y)), EYE_R * unit, eye_color)
    if "cheeks" in accessories:
        for s in (-1, 1):
            paint.disc(at(complex(s * 2.7, 1.1)), 1.15 * unit, extra)
    if "beak" in accessories:
        paint.polygon([at(complex(-1.8, 0.6)), at(complex(1.8, 0.6)), at(complex(0, 3.6))], extra)
    if "snout" in accessories:
        paint.polygon([at(q) for q in _ellipse(2.1, 1.5, center=1.5j, n=16)], extra)


def render(subject: Subject | str, pose: Pose) -> Image.Image:
    """Draw ``subject`` in ``pose`` on the plain background: a 64x64 RGB image (pure, deterministic)."""
    subject = get_subject(subject)
    sk = skeleton(pose, subject.body)
    canvas = Image.new("RGB", (SIZE * SUPERSAMPLE, SIZE * SUPERSAMPLE), BACKGROUND)
    paint = _Painter(canvas)
    if "tail" in subject.accessories:
        _draw_tail(paint, sk, subject)
    for side in SIDES:
        _draw_limb(paint, sk, subject, (f"{side}_hip", f"{side}_knee", f"{side}_foot"))
    _draw_torso(paint, sk, subject)
    for side in SIDES:
        _draw_limb(paint, sk, subject, (f"{side}_shoulder", f"{side}_elbow", f"{side}_hand"))
    _draw_head(paint, sk, subject)
    return canvas.reduce(SUPERSAMPLE)


# The part map (our DensePose): every body part in its own flat colour on black, at the subject's own
# proportions, without its colours, marks or accessories. Colours as far apart as the 16 parts allow.
PART_COLOURS: dict[str, RGB] = {
    "head": (255, 255, 255),
    "torso": (128, 128, 128),
    "tail": (128, 64, 0),
    "left_upper_arm": (255, 0, 0),
    "left_forearm": (255, 128, 128),
    "left_hand": (128, 0, 0),
    "right_upper_arm": (0, 255, 0),
    "right_forearm": (128, 255, 128),
    "right_hand": (0, 128, 0),
    "left_thigh": (0, 0, 255),
    "left_shin": (128, 128, 255),
    "left_foot": (0, 0, 128),
    "right_thigh": (255, 255, 0),
    "right_shin": (255, 255, 128),
    "right_foot": (128, 128, 0),
}
PART_BACKGROUND: RGB = (0, 0, 0)


def _draw_part_limb(paint: _Painter, sk: Skeleton, joints: tuple[str, str, str], parts: tuple[str, str, str]):
    upper, middle, end = (sk.points[j] for j in joints)
    radius = sk.radii[joints[1]] * sk.unit
    paint.capsule(upper, middle, radius, PART_COLOURS[parts[0]])
    paint.capsule(middle, end, radius, PART_COLOURS[parts[1]])
    paint.disc(end, sk.radii[joints[2]] * sk.unit, PART_COLOURS[parts[2]])


def render_part_map(subject: Subject | str, pose: Pose) -> Image.Image:
    """``subject``'s body in ``pose`` as a part map (PART_COLOURS on black): what a dense pose estimator
    (DensePose) would give for the image ``render(subject, pose)``; 64x64 RGB, pure and deterministic."""
    subject = get_subject(subject)
    sk = skeleton(pose, subject.body)
    canvas = Image.new("RGB", (SIZE * SUPERSAMPLE, SIZE * SUPERSAMPLE), PART_BACKGROUND)
    paint, p = _Painter(canvas), sk.points
    if "tail" in subject.accessories:
        radius = sk.radii["tail_mid"] * sk.unit
        paint.capsule(p["tail_root"], p["tail_mid"], radius, PART_COLOURS["tail"])
        paint.capsule(p["tail_mid"], p["tail_tip"], radius, PART_COLOURS["tail"])
    for side in SIDES:
        _draw_part_limb(
            paint, sk, (f"{side}_hip", f"{side}_knee", f"{side}_foot"),
            (f"{side}_thigh", f"{side}_shin", f"{side}_foot"),
        )  # fmt: skip
    paint.capsule(p["torso_low"], p["torso_high"], sk.body.torso_r * sk.unit, PART_COLOURS["torso"])
    for side in SIDES:
        _draw_part_limb(
            paint, sk, (f"{side}_shoulder", f"{side}_elbow", f"{side}_hand"),
            (f"{side}_upper_arm", f"{side}_forearm", f"{side}_hand"),
        )  # fmt: skip
    paint.disc(p["head"], sk.body.head_r * sk.unit, PART_COLOURS["head"])
    return canvas.reduce(SUPERSAMPLE)


# The skeleton's joints under OpenPose's names (imposter.retarget.JOINTS): the head's centre stands for
# the nose, the top of the spine for the neck, the hand and foot discs' centres for wrists and ankles.
KEYPOINT_JOINTS = {"head": "head", "neck": "torso_high"} | {
    f"{side}_{name}": f"{side}_{joint}"
    for side in SIDES
    for name, joint in (
        ("shoulder", "shoulder"), ("elbow", "elbow"), ("wrist", "hand"),
        ("hip", "hip"), ("knee", "knee"), ("ankle", "foot"),
    )
}  # fmt: skip


def body_keypoints(subject: Subject | str, pose: Pose) -> dict[str, tuple[float, float]]:
    """The body joints of ``render(subject, pose)`` in its pixels (x, y): what a perfect OpenPose would
    detect on it."""
    points = skeleton(pose, get_subject(subject).body).points
    return {name: (points[joint].real, points[joint].imag) for name, joint in KEYPOINT_JOINTS.items()}
