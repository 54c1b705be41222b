"""The toy world's cast: classes and their endless instances (appearance and body plan), actions
(families of poses), captions and the held-out splits.

A pose is a set of joint angles in degrees. Every limb angle is 0 when the limb hangs straight down and
grows *outward* (away from the body's midline), so 90 is horizontal and outward, 180 straight up, and a
negative angle crosses toward the other side. Upper limbs (shoulder, hip) are measured in the torso's
frame; lower limbs (elbow, knee) relative to their upper limb. "left" and "right" mean the image's left
and right (the figure faces the viewer). ``spine`` leans the upper body about the hips (positive: toward
the image's right); ``tilt`` turns the whole figure (positive: clockwise on screen).

A body plan (:class:`BodyPlan`) sets proportions: torso, head, limb lengths and thickness. An action's
joint angles apply to each subject's own skeleton, so the same action gives each body its own
silhouette: a stocky robot and a long-limbed alien raising their arms do not overlap.

**Classes and instances (world v3).** A class (:class:`SubjectClass`: "robot", "dog", ...) fixes a head
shape, a body type and the accessories every instance wears. An instance (:class:`Subject`), drawn from a
seed key by :func:`instance`, has its own colours (main, accent, accessories; from :data:`PALETTE`), its
own pattern, its own choice of the class's optional accessories and its own proportions (each length
within +-8% of the class's). Captions name the class only ("a dog waving"), as a user captions a photo of
their own dog, so a model can draw "a dog" but not *this* dog: that is what personalization must learn.
Instances come from disjoint seed streams (:data:`STREAMS`): pretraining draws only from "pretraining",
the evaluation pairs from "tune" and "table", the sequences from "sequences", the classifier and the
instance metric from their own; so every evaluation source is an instance that pretraining never rendered.

Held-out design: classes and actions are both numbered 0..9 in the order listed below; class ``i`` never
performs actions ``i`` and ``(i + 3) % 10`` in pretraining. So every class has 2 held-out actions, every
action is held out for exactly 2 classes and seen with the other 8. The held-out combinations are split
in two disjoint halves: ``(i, i)`` is for choosing settings (``TUNE_COMBOS``), ``(i, i + 3)`` for the
reported tables (``TABLE_COMBOS``); each half holds every class and every action once.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from imposter.errors import ConfigError

RGB = tuple[int, int, int]

BACKGROUND: RGB = (235, 235, 235)  # far from every subject color, so the figure mask is exact

HEAD_SHAPES = ("circle", "square", "oval", "triangle", "diamond", "hexagon")
PATTERNS = ("plain", "stripes", "spots", "belly")
ACCESSORIES = (
    "antenna", "antennae", "beak", "tail", "ears", "floppy_ears", "snout", "horns", "eyes_up",
    "collar", "belt", "cheeks", "crest",
)  # fmt: skip


@dataclass(frozen=True)
class BodyPlan:
    """A subject's proportions, in output pixels at pose scale 1 (a 64x64 image).

    The torso is a capsule along the spine from ``torso_low`` to ``torso_high`` above the hip center, of
    half-width ``torso_r``; the head of radius ``head_r`` sits on top; arms hang from the shoulders
    (``shoulder_x`` out, ``shoulder_rise`` above ``torso_high``) and legs from ``hip_half`` out.
    """

    torso_low: float = 2.4
    torso_high: float = 8.3
    torso_r: float = 4.2
    head_r: float = 4.3
    shoulder_x: float = 3.6
    shoulder_rise: float = 1.0
    hip_half: float = 2.2
    upper_arm: float = 5.0
    forearm: float = 4.6
    arm_r: float = 1.9
    hand_r: float = 2.2
    thigh: float = 5.6
    shin: float = 5.3
    leg_r: float = 2.1
    foot_r: float = 2.3

    def but(self, **changes: float) -> BodyPlan:
        """This plan with some proportions changed (how a subject tweaks its body type)."""
        return replace(self, **changes)


# Four body types, clearly apart in silhouette; each subject tweaks one of them, so no two subjects share
# a body. Heights standing, without accessories: average ~33 px, stocky ~27, long-limbed ~40, big-head ~30.
AVERAGE = BodyPlan()
STOCKY = BodyPlan(
    torso_low=2.2, torso_high=6.8, torso_r=5.6, head_r=4.4, shoulder_x=4.8, hip_half=3.2,
    upper_arm=3.9, forearm=3.5, arm_r=2.5, hand_r=2.7, thigh=3.6, shin=3.3, leg_r=2.7, foot_r=2.8,
)  # fmt: skip
LONG_LIMBED = BodyPlan(
    torso_low=2.6, torso_high=10.4, torso_r=3.1, head_r=3.6, shoulder_x=2.7, hip_half=1.6,
    upper_arm=6.9, forearm=6.4, arm_r=1.45, hand_r=1.8, thigh=7.9, shin=7.4, leg_r=1.6, foot_r=1.9,
)  # fmt: skip
BIG_HEAD = BodyPlan(
    torso_low=2.0, torso_high=5.8, torso_r=3.5, head_r=6.6, shoulder_x=3.0, shoulder_rise=0.6, hip_half=1.8,
    upper_arm=4.1, forearm=3.7, arm_r=1.6, hand_r=2.0, thigh=4.2, shin=3.9, leg_r=1.8, foot_r=2.1,
)  # fmt: skip
BODY_TYPES: dict[str, BodyPlan] = {
    "average": AVERAGE,
    "stocky": STOCKY,
    "long-limbed": LONG_LIMBED,
    "big-head": BIG_HEAD,
}


@dataclass(frozen=True)
class Subject:
    """How one figure looks, an *instance* of a class: colours, head shape, body pattern, accessories and
    body plan (never its pose). ``name`` is its class ("robot"); ``key`` says where the instance came from."""

    name: str  # its class, one of CLASS_NAMES
    main: RGB  # head and torso (the limbs are a shade of it)
    accent: RGB  # hands, feet and the pattern
    head: str  # one of HEAD_SHAPES
    pattern: str = "plain"  # one of PATTERNS
    accessories: tuple[str, ...] = ()  # some of ACCESSORIES
    body: BodyPlan = AVERAGE
    extra: RGB | None = None  # the accessories' colour (None: the accent)
    key: tuple[int, ...] = ()  # the instance's seed key (see :func:`instance`); () for a class's reference

    def __post_init__(self) -> None:
        unknown = (
            ({self.head} - set(HEAD_SHAPES))
            | ({self.pattern} - set(PATTERNS))
            | (set(self.accessories) - set(ACCESSORIES))
        )
        if unknown:
            raise ConfigError(
                f"subject {self.name!r} has unknown parts {sorted(unknown)}; see HEAD_SHAPES, "
                "PATTERNS and ACCESSORIES in imposter.toyworld.world"
            )

    @property
    def accessory_colour(self) -> RGB:
        return self.accent if self.extra is None else self.extra


@dataclass(frozen=True)
class SubjectClass:
    """What every instance of a class shares: its head shape, its body type (each instance varies the
    proportions a little), the accessories it always wears; plus the optional ones an instance may wear.
    ``reference`` is the class's v2 look, one fixed instance (tests, pictures)."""

    name: str
    head: str
    body: BodyPlan
    required: tuple[str, ...]
    optional: tuple[str, ...]
    reference: Subject


def _class(
    name: str, head: str, body: BodyPlan, required: tuple[str, ...], optional: tuple[str, ...],
    main: RGB, accent: RGB, pattern: str,
) -> SubjectClass:  # fmt: skip
    reference = Subject(name, main, accent, head, pattern, required, body)
    return SubjectClass(name, head, body, required, optional, reference)


# Ten classes, told apart by shape alone: head shape, body type and the accessories every instance wears
# (colours are the instance's own). Body types: stocky (robot, frog, pig), long-limbed (alien, cat,
# dragon), big head (bird, duck), average (tiger, dog); the tweaks give each class its own proportions.
# The colours and pattern here are each class's reference instance: its look in world v2.
CLASSES: tuple[SubjectClass, ...] = (
    _class("robot", "square", STOCKY.but(torso_r=5.9, head_r=4.0, thigh=3.9), ("antenna",),
           ("collar", "belt"), (215, 35, 35), (60, 60, 75), "belly"),
    _class("bird", "circle", BIG_HEAD.but(thigh=4.6, shin=4.4, leg_r=1.5), ("beak", "tail"),
           ("crest", "collar"), (40, 95, 215), (250, 175, 30), "plain"),
    _class("frog", "oval", STOCKY.but(head_r=4.9, thigh=4.2, shin=3.8, torso_high=6.0), ("eyes_up",),
           ("cheeks", "collar"), (60, 170, 60), (20, 80, 30), "spots"),
    _class("tiger", "circle", AVERAGE.but(torso_r=4.5, head_r=4.0), ("ears", "tail"),
           ("collar", "cheeks"), (245, 135, 20), (30, 30, 30), "stripes"),
    _class("dog", "square", AVERAGE.but(thigh=4.9, shin=4.6, torso_high=9.0), ("floppy_ears", "tail"),
           ("collar", "cheeks"), (160, 215, 50), (90, 50, 20), "spots"),
    _class("pig", "circle", STOCKY.but(torso_r=6.2, upper_arm=3.4, forearm=3.0, thigh=3.2, shin=3.0),
           ("ears", "snout"), ("collar", "belt"), (240, 120, 175), (170, 40, 100), "plain"),
    _class("alien", "diamond", LONG_LIMBED.but(head_r=4.2, torso_r=2.9), ("antennae",),
           ("belt", "cheeks"), (135, 55, 195), (70, 230, 210), "spots"),
    _class("duck", "circle", BIG_HEAD.but(head_r=6.0, torso_r=4.1, thigh=3.6, shin=3.4), ("beak",),
           ("crest", "collar"), (240, 220, 40), (240, 110, 20), "plain"),
    _class("cat", "triangle", LONG_LIMBED.but(thigh=7.2, shin=6.8, upper_arm=6.2, forearm=5.8, torso_r=3.4),
           ("ears", "tail"), ("collar", "cheeks"), (45, 45, 55), (245, 200, 40), "plain"),
    _class("dragon", "hexagon", LONG_LIMBED.but(torso_r=3.9, arm_r=1.7, leg_r=1.9, head_r=4.0),
           ("horns", "tail"), ("crest", "belt"), (20, 165, 165), (20, 50, 110), "belly"),
)  # fmt: skip
CLASS_NAMES: tuple[str, ...] = tuple(c.name for c in CLASSES)
SUBJECT_NAMES = CLASS_NAMES  # what captions, splits and the classifier's first head name
SUBJECTS: tuple[Subject, ...] = tuple(c.reference for c in CLASSES)

# Instance colours: sixteen well-separated colours, every one far from the background (so the figure mask
# stays exact) and from the others (so a blurred image still shows which).
PALETTE: tuple[RGB, ...] = (
    (215, 35, 35), (40, 95, 215), (60, 170, 60), (245, 135, 20), (160, 215, 50), (240, 120, 175),
    (135, 55, 195), (240, 220, 40), (45, 45, 55), (20, 165, 165), (120, 70, 30), (25, 35, 100),
    (125, 125, 125), (125, 20, 45), (90, 180, 240), (110, 120, 30),
)  # fmt: skip
PROPORTION_JITTER = 0.08  # each body-plan length times a factor uniform in 1 +- this

# Where instances come from: an instance is drawn from the seed key (stream, seed, index), and each use has
# its own stream, so pretraining never renders an instance that the evaluation pairs, the sequences, the
# classifier or the instance metric's distractors use (module docstring, "Instances").
STREAMS: dict[str, int] = {
    "pretraining": 0, "classifier": 1, "classifier-eval": 2, "tune": 3, "table": 4, "sequences": 5,
    "distractors": 6,
}  # fmt: skip


def get_class(name: str) -> SubjectClass:
    """The class called ``name`` ("dog"); also accepts "a dog"."""
    name = name.removeprefix("a ").strip()
    for subject_class in CLASSES:
        if subject_class.name == name:
            return subject_class
    raise ConfigError(f"unknown toy class {name!r}; choose one of {', '.join(CLASS_NAMES)}")


def instance(class_name: str, stream: str, seed: int, index: int) -> Subject:
    """The instance of ``class_name`` drawn from key (``stream``, ``seed``, ``index``): deterministic, and
    different for every key. Its colours, pattern, optional accessories and proportions are its own."""
    subject_class = get_class(class_name)
    if stream not in STREAMS:
        raise ConfigError(f"unknown instance stream {stream!r}; choose one of {', '.join(STREAMS)}")
    key = (STREAMS[stream], int(seed), CLASS_NAMES.index(subject_class.name), int(index))
    rng = np.random.default_rng(key)
    main, accent, extra = (PALETTE[int(i)] for i in rng.choice(len(PALETTE), size=3, replace=False))
    pattern = PATTERNS[int(rng.integers(len(PATTERNS)))]
    worn = tuple(a for a in subject_class.optional if rng.random() < 0.5)
    factors = rng.uniform(1 - PROPORTION_JITTER, 1 + PROPORTION_JITTER, len(fields(BodyPlan)))
    body = BodyPlan(
        **{
            f.name: getattr(subject_class.body, f.name) * float(x)
            for f, x in zip(fields(BodyPlan), factors, strict=True)
        }
    )
    return Subject(
        subject_class.name, main, accent, subject_class.head, pattern, subject_class.required + worn, body,
        extra, key,
    )  # fmt: skip


@dataclass(frozen=True)
class Pose:
    """Joint angles (degrees, see the module docstring) plus placement: shift, scale and tilt."""

    spine: float = 0.0
    left_shoulder: float = 0.0
    left_elbow: float = 0.0
    right_shoulder: float = 0.0
    right_elbow: float = 0.0
    left_hip: float = 0.0
    left_knee: float = 0.0
    right_hip: float = 0.0
    right_knee: float = 0.0
    dx: float = 0.0  # pixels right of the image center (64x64 image)
    dy: float = 0.0  # pixels below the ground line
    scale: float = 1.0
    tilt: float = 0.0  # degrees, the whole figure, clockwise on screen


JOINTS: tuple[str, ...] = tuple(f.name for f in fields(Pose))[:9]


def _limbs(
    shoulders: tuple[float, float],
    elbows: tuple[float, float],
    hips: tuple[float, float],
    knees: tuple[float, float],
    spine: float = 0.0,
    tilt: float = 0.0,
) -> Pose:
    """Build a mean pose from (left, right) angle pairs."""
    return Pose(
        spine=spine,
        left_shoulder=shoulders[0],
        right_shoulder=shoulders[1],
        left_elbow=elbows[0],
        right_elbow=elbows[1],
        left_hip=hips[0],
        right_hip=hips[1],
        left_knee=knees[0],
        right_knee=knees[1],
        tilt=tilt,
    )


STANDING = _limbs((14, 14), (6, 6), (5, 5), (-2, -2))

# Each action's mean pose; chosen so that every silhouette differs from the others and from standing.
ACTION_POSES: dict[str, Pose] = {
    "raising both arms": _limbs((152, 152), (5, 5), (5, 5), (0, 0)),
    "waving": _limbs((14, 105), (6, 65), (5, 5), (-2, -2)),
    "kicking": _limbs((50, 50), (10, 10), (-5, 80), (0, 5), spine=-10),
    "doing jumping jacks": _limbs((130, 130), (10, 10), (30, 30), (0, 0)),
    "meditating": _limbs((35, 35), (15, 15), (72, 72), (-150, -150)),
    "dancing": _limbs((150, 70), (25, -75), (10, 45), (0, -95), spine=8),
    "stretching sideways": _limbs((125, 205), (20, 20), (12, 12), (0, 0), spine=-25),
    "flexing muscles": _limbs((90, 90), (95, 95), (12, 12), (0, 0)),
    "doing a handstand": _limbs((170, 170), (0, 0), (12, 12), (0, 0), tilt=180),
    "squatting": _limbs((85, 85), (0, 0), (55, 55), (-105, -105)),
}
ACTIONS: tuple[str, ...] = tuple(ACTION_POSES)

ANGLE_JITTER_STD = 5.0  # degrees per joint; clipped so the action stays recognisable
ANGLE_JITTER_MAX = 12.0
SHIFT_JITTER = (3.0, 2.0)  # pixels, uniform in +-(dx, dy)
SCALE_JITTER = 0.08  # uniform in 1 +- this
TILT_JITTER_MAX = 6.0  # degrees, normal with std half of this, clipped


def _heldout_combos() -> tuple[tuple[str, str], ...]:
    """Subject i holds out actions i and i + 3 (mod 10): a Latin design, see the module docstring."""
    n = len(ACTIONS)
    return tuple((s, ACTIONS[j]) for i, s in enumerate(SUBJECT_NAMES) for j in sorted({i % n, (i + 3) % n}))


HELDOUT_COMBOS: tuple[tuple[str, str], ...] = _heldout_combos()
_HELDOUT = frozenset(HELDOUT_COMBOS)
# The two disjoint halves of the held-out combinations (module docstring): settings are chosen on one,
# tables reported on the other.
TUNE_COMBOS: tuple[tuple[str, str], ...] = tuple(
    (s, ACTIONS[i % len(ACTIONS)]) for i, s in enumerate(SUBJECT_NAMES)
)
TABLE_COMBOS: tuple[tuple[str, str], ...] = tuple(c for c in HELDOUT_COMBOS if c not in set(TUNE_COMBOS))
SPLITS: dict[str, tuple[tuple[str, str], ...]] = {"table": TABLE_COMBOS, "tune": TUNE_COMBOS}
TRAIN_COMBOS: tuple[tuple[str, str], ...] = tuple(
    (s, a) for s in SUBJECT_NAMES for a in ACTIONS if (s, a) not in _HELDOUT
)


def get_subject(name: str | Subject) -> Subject:
    """A Subject passes through; a class name ("dog") gives that class's reference instance."""
    if isinstance(name, Subject):
        return name
    return get_class(name).reference


def check_action(action: str | None) -> str | None:
    """Return ``action`` with "standing" mapped to None; raise if it is not a toy action."""
    if action is None or action == "standing":
        return None
    if action not in ACTION_POSES:
        raise ConfigError(f"unknown toy action {action!r}; choose one of standing, {', '.join(ACTIONS)}")
    return action


def is_heldout(subject: str, action: str | None) -> bool:
    """True when (subject, action) is never shown in pretraining; standing is always shown."""
    action = check_action(action)
    return action is not None and (get_subject(subject).name, action) in _HELDOUT


def with_article(words: str) -> str:
    """``words`` after their indefinite article: "a robot", "an alien"."""
    return f"{'an' if words[:1].lower() in 'aeiou' else 'a'} {words}"


def caption(subject: str | Subject, action: str | None = None) -> str:
    """The caption of a subject standing ("a robot", "an alien") or doing an action ("a robot waving"): its
    class only, the way a user captions a photo of their own robot."""
    name = with_article(get_subject(subject).name)
    action = check_action(action)
    return name if action is None else f"{name} {action}"


# The words of the toy models' tokenizers. "an" is not one of them: the tokenizers read it as "a"
# (``model.ARTICLE``), so the models, trained on "a alien ..." before captions took the right article,
# read "an alien" as they were taught; one article token is all they need.
VOCABULARY: list[str] = sorted({"a"} | {w for text in SUBJECT_NAMES + ACTIONS for w in text.split()})
KNOWN_WORDS = frozenset([*VOCABULARY, "an"])  # what a toy caption may say


def mean_pose(action: str | None) -> Pose:
    """The un-jittered pose of an action (None or "standing": the standing pose)."""
    action = check_action(action)
    return STANDING if action is None else ACTION_POSES[action]


def sample_pose(action: str | None, rng: np.random.Generator) -> Pose:
    """A jittered pose of ``action`` (None or "standing": standing); every draw is a unique exact pose."""
    mean = mean_pose(action)
    jitter = np.clip(rng.normal(0.0, ANGLE_JITTER_STD, len(JOINTS)), -ANGLE_JITTER_MAX, ANGLE_JITTER_MAX)
    angles = {j: getattr(mean, j) + float(d) for j, d in zip(JOINTS, jitter, strict=True)}
    dx, dy = (float(rng.uniform(-m, m)) for m in SHIFT_JITTER)
    scale = 1.0 + float(rng.uniform(-SCALE_JITTER, SCALE_JITTER))
    tilt = mean.tilt + float(np.clip(rng.normal(0.0, TILT_JITTER_MAX / 2), -TILT_JITTER_MAX, TILT_JITTER_MAX))
    return replace(mean, **angles, dx=dx, dy=dy, scale=scale, tilt=tilt)


def interpolate_pose(start: Pose, end: Pose, weight: float) -> Pose:
    """The pose a fraction ``weight`` of the way from ``start`` to ``end`` (every field linearly)."""
    return Pose(
        **{
            f.name: (1 - weight) * getattr(start, f.name) + weight * getattr(end, f.name)
            for f in fields(Pose)
        }
    )


def sequence_poses(action: str, n_frames: int, rng: np.random.Generator) -> list[Pose]:
    """Poses of an animation that moves smoothly from a standing pose to a jittered ``action`` pose."""
    if n_frames < 1:
        raise ConfigError(f"n_frames must be at least 1, got {n_frames}")
    start = sample_pose(None, rng)
    end = replace(sample_pose(action, rng), dx=start.dx, dy=start.dy, scale=start.scale)
    steps = np.linspace(0.0, 1.0, n_frames) if n_frames > 1 else np.ones(1)
    return [interpolate_pose(start, end, float(0.5 - 0.5 * np.cos(np.pi * t))) for t in steps]
