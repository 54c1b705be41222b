"""Settings of a run as dataclasses, with the paper's defaults and where each comes from.

"Paper" means ImPoster, Kothandaraman et al., arXiv 2409.15650, Sec. 4 (implementation details).
"Authors' code" means github.com/divyakraman/ImPosterDiffusion2024 (see docs/authors-code.md).
Where we depart from the paper, the field's comment says why and what was measured.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

from .errors import ConfigError

Fit = Literal["pad", "crop"]
FITS: tuple[str, ...] = ("pad", "crop")
GUIDANCE_SPACES: tuple[str, ...] = ("denoised", "noisy")
PHASE_DISTANCES: tuple[str, ...] = (
    "cos",
    "abs",
)  # imposter.guidance: wrap-safe cosine, or the authors' |angle|
NORMALIZATIONS: tuple[str, ...] = ("sum", "paper")  # imposter.guidance: what the scales s_a, s_p mean
# what is trained: a LoRA (ImPoster), the whole UNet (the authors' release), text-side tensors (peers)
# What a fine-tune learns, the one name for it (methods with the same kind and settings share one fine-tune):
# a LoRA on both pairs (the paper), a LoRA on the source pair alone, the authors' full UNet, HiPer's text
# embedding, ADI's identifiers (alone or with a LoRA), or nothing (the reference rows).
# Which layers a LoRA reaches: the attention projections (the paper's, diffusers' DreamBooth-LoRA default), or
# "wide": those and the layers that carry most of a small image's colour and texture, the UNet's ResNet
# convolutions (SD 1.x/2.x, SDXL) or the transformer's feed-forward layers (FLUX.1): each family's list.
LORA_LAYERS: tuple[str, ...] = ("attention", "wide")
FINETUNE_KINDS: tuple[str, ...] = (
    "lora",
    "lora-source",
    "full-authors",
    "text-embedding",
    "identifier",
    "identifier+lora",
    "none",
)


@dataclass(frozen=True)
class FinetuneConfig:
    """Fine-tuning the UNet on the (source image, caption) and (driving image, caption) pairs."""

    # paper Sec. 4: 500 fine-tuning iterations (authors' train1.py passes 500 too). On toy world v3, whose
    # sources the model has never seen, 50 to 500 steps leave the source instance at chance (tune split,
    # docs/toy-defaults.md): the fine-tune does not yet learn what it is for, so the budget cannot be chosen
    # by measurement; the paper's 500 stays.
    steps: int = 500
    rank: int = 4  # paper Sec. 4: LoRA rank 4 (authors' code: LoRAAttnProcessor rank 4)
    # The paper's learning rate (2e-6) belongs to the authors' full-UNet Adam set-up, where LoRA's
    # zero-initialised up-projections barely move. For LoRA we take diffusers' DreamBooth-LoRA defaults
    # (examples/dreambooth/train_dreambooth_lora.py: AdamW, lr 5e-4, weight decay 1e-2, clip 1.0).
    # On the toy world, 250-1000 steps and lr 2.5e-4-1e-3 gave the same pose and identity within the
    # noise (docs/toy-defaults.md, stage 4), so these stay.
    learning_rate: float = 5e-4
    weight_decay: float = 1e-2
    max_grad_norm: float = 1.0
    # paper Sec. 4: LoRA on the denoiser's attention projections. None: the model family's list, which is what
    # diffusers' DreamBooth-LoRA trainer of that family targets (imposter.families: SD, SDXL to_q/to_k/to_v/
    # to_out.0; FLUX.1 also the text stream's add_q/k/v_proj and to_add_out).
    target_modules: tuple[str, ...] | None = None
    # None above: the family's list for these layers (LORA_LAYERS). "attention" is the paper's; "wide" learned
    # three times the source instance on toy world v3's tune split (imposter-subject's default, docs/toy-defaults.md)
    lora_layers: str = "attention"
    # Recompute activations in the backward pass: less memory, ~30% slower, same numbers. None: the
    # family's default (off for SD 1.x/2.x, on for SDXL and FLUX.1, which need it on a 24 GB card).
    gradient_checkpointing: bool | None = None
    kind: str = "lora"  # what is learned (FINETUNE_KINDS); set by the method, not the user
    seed: int = 0

    def validate(self) -> FinetuneConfig:
        """Raise ConfigError on an out-of-range value; return self."""
        if self.steps < 0:
            raise ConfigError(f"$train_steps must be >= 0, got {self.steps}")
        if self.rank < 1:
            raise ConfigError(f"LoRA rank must be >= 1, got {self.rank}")
        if not self.learning_rate > 0:
            raise ConfigError(f"learning rate must be > 0, got {self.learning_rate}")
        if self.lora_layers not in LORA_LAYERS:
            raise ConfigError(f"$lora_layers must be one of {LORA_LAYERS}, got {self.lora_layers!r}")
        if self.kind not in FINETUNE_KINDS:
            raise ConfigError(f"fine-tune kind must be one of {FINETUNE_KINDS}, got {self.kind!r}")
        return self


@dataclass(frozen=True)
class SamplingConfig:
    """Denoising with stepwise text prompting and frequency guidance."""

    steps: int = 50  # paper Sec. 4: 50 DDIM steps
    guidance_scale: float = 7.5  # paper Sec. 4: classifier-free guidance 7.5
    k: int = 5  # paper Sec. 4: driving caption for the first K = 5 steps (authors' train1.py uses 6)
    # Frequency guidance. The paper's scales (s_a = 1e-6, s_p = 1e-3) are stated in the authors' "paper"
    # normalization, where they move SD latents by ~1e-7 per step: no effect. Ours are in the "sum"
    # normalization (per-element steps independent of the latent size, see imposter.guidance) and were
    # chosen by measurement against the toy world's ground truth, on the v2 "tune" split only (20 pairs x 2
    # seeds, LoRA 250 steps; benchmarks/toyworld.py sweep, docs/toy-defaults.md). The paper's recipe (every
    # frequency, s_a = 0.03, s_p = 0.1; kept as --method imposter-paper) raises pose IoU over Baseline++
    # (0.469 -> 0.589) but lets the driving subject's body in (leakage 0.037 -> 0.133). Guiding the phase
    # only below 0.35 cycles per latent pixel, at s_p = 0.2, places the pose within noise as well (0.574)
    # at half the leakage (0.074; subject 0.646 vs 0.623); the halving held at 0, 100 and 500 LoRA steps.
    amp_scale: float = 0.03
    phase_scale: float = 0.2
    # "cos" (1 - cos of the phase difference, wrap-around safe) or "abs" (the authors' |angle| distance);
    # cos measured better at every scale (toy world v1, 0.70 vs 0.65 pose IoU at s_p = 0.1).
    phase_distance: str = "cos"
    guidance_normalization: str = "sum"  # "sum" (ours) or "paper" (authors: unnormalized FFT, mean)
    # "noisy": the latents z_t after each scheduler step, as the paper and the authors' code.
    # "denoised": the step's predicted clean latents x0, then z_{t-1} moves by sqrt(alpha_bar_{t-1})
    # times the x0 update; the references are clean latents. Measured on toy world v1: no better than
    # "noisy" (0.67 vs 0.70 pose IoU at s_p = 0.1), so the paper's choice stays the default.
    guidance_space: str = "noisy"
    # Guide the phase only up to this frequency, in cycles per latent pixel (None: every frequency, as the
    # paper; the largest is about 0.71). The pose lives in the low frequencies, the driving subject's own
    # body and marks in the high ones: 0.35 measured best on the tune split (above; 0.25 and 0.125 place
    # less of the pose, 0.5 and every frequency let the driving subject in).
    phase_cutoff: float | None = 0.35
    # Guide only during the first fraction of the steps (1.0: every step, as the paper). Stopping at 0.4
    # lost pose on the tune split (0.602 -> 0.560 at s_p = 0.2) for little subject, so the paper's stays.
    guidance_until: float = 1.0
    eta: float = 0.0  # authors' code: DDIM eta 0 (deterministic)
    batch_size: int | None = None  # seeds denoised together; None: all seeds of the run in one batch
    # pose-control only: the ControlNet residuals' weight (diffusers' controlnet_conditioning_scale default)
    controlnet_scale: float = 1.0
    # From this denoising step on, the denoiser's decoder self-attention also attends to the source image's
    # own tokens, noised to the same step (imposter.source_attention; MasaCtrl starts after the layout forms,
    # as K does). Counted as K is, from the schedule's first step, also when driving_strength skips some.
    # None: off, as the paper. UNet families only (SD 1.x/2.x, SDXL).
    source_attention_from: int | None = None
    # Start from the driving image's latents noised to this strength (img2img, SDEdit: Meng et al., ICLR 2022;
    # the first (1 - strength) of the steps are skipped, diffusers' rule), not from pure noise. None: pure
    # noise, as the paper. The layout then comes from the driving image itself (issue 19, direction 4).
    # Every family (FLUX.1: on its own shifted flow-matching schedule, Family.noised_start).
    driving_strength: float | None = None
    # With driving_strength: reach that step's noise level by DDIM inversion of the driving latents (the
    # driving caption, no guidance; imposter.inversion) instead of fresh noise, so the start keeps the
    # driving image exactly and every seed starts alike (issue 19, direction 4's other half). UNet families.
    driving_inversion: bool = False
    # With driving_strength: everything outside the starting picture's figure (imposter: the moved
    # source) starts from this higher strength, the figure held to its own picture's noised latents until
    # driving_strength's step (blended latent diffusion: Avrahami et al., SIGGRAPH 2023; the non-inpainting
    # branch of diffusers' StableDiffusionInpaintPipeline). What the figure does not cover (its old place,
    # the backdrop, a held object the action needs) is drawn anew while the body stays. None: one strength.
    scene_strength: float | None = None

    def validate(self) -> SamplingConfig:
        """Raise ConfigError on an out-of-range or inconsistent value; return self."""
        if self.steps < 1:
            raise ConfigError(f"$steps must be >= 1, got {self.steps}")
        if self.k < 0 or self.k > self.steps:
            raise ConfigError(
                f"$k {self.k} must be between 0 and the number of steps ({self.steps}); lower $k or raise $steps"
            )
        if self.guidance_scale < 0:
            raise ConfigError(f"$guidance_scale must be >= 0, got {self.guidance_scale}")
        if self.amp_scale < 0 or self.phase_scale < 0:
            raise ConfigError(
                f"guidance scales must be >= 0 (got $amp_scale {self.amp_scale}, $phase_scale {self.phase_scale});"
                " use 0 to switch a term off"
            )
        if self.phase_distance not in PHASE_DISTANCES:
            raise ConfigError(f"phase distance must be one of {PHASE_DISTANCES}, got {self.phase_distance!r}")
        if self.guidance_normalization not in NORMALIZATIONS:
            raise ConfigError(
                f"guidance normalization must be one of {NORMALIZATIONS}, got {self.guidance_normalization!r}"
            )
        if self.guidance_space not in GUIDANCE_SPACES:
            raise ConfigError(f"guidance space must be one of {GUIDANCE_SPACES}, got {self.guidance_space!r}")
        if not 0 <= self.eta <= 1:
            raise ConfigError(f"eta must be in [0, 1], got {self.eta}")
        if self.phase_cutoff is not None and self.phase_cutoff <= 0:
            raise ConfigError(f"$phase_cutoff must be > 0 (cycles per latent pixel), got {self.phase_cutoff}")
        if not 0 <= self.guidance_until <= 1:
            raise ConfigError(
                f"$guidance_until must be in [0, 1] (a fraction of the steps), got {self.guidance_until}"
            )
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"$batch_size must be >= 1, got {self.batch_size}")
        if self.controlnet_scale < 0:
            raise ConfigError(f"$controlnet_scale must be >= 0, got {self.controlnet_scale}")
        if self.source_attention_from is not None and not 0 <= self.source_attention_from <= self.steps:
            raise ConfigError(
                f"$source_attention_from {self.source_attention_from} must be a step between 0 and $steps "
                f"({self.steps}); lower it or leave it unset"
            )
        if self.driving_strength is not None and not 0 < self.driving_strength <= 1:
            raise ConfigError(
                f"$driving_strength must be in (0, 1] (1: the driving image fully noised), got "
                f"{self.driving_strength}; leave it unset to start from pure noise"
            )
        if self.driving_inversion and self.driving_strength is None:
            raise ConfigError(
                "$driving_inversion inverts the driving image to the noise level of $driving_strength; "
                "give $driving_strength too (e.g. 0.6)"
            )
        if self.scene_strength is not None and (
            self.driving_strength is None or not self.driving_strength <= self.scene_strength <= 1
        ):
            raise ConfigError(
                f"$scene_strength {self.scene_strength} must lie between $driving_strength "
                f"({self.driving_strength}) and 1: the figure starts at $driving_strength, the rest of the "
                "picture from higher; raise it or leave it unset"
            )
        if self.scene_strength is not None and self.driving_inversion:
            raise ConfigError(
                "$scene_strength starts the picture from fresh noise and $driving_inversion from the inverted "
                "driving image; choose one"
            )
        return self


@dataclass(frozen=True)
class RunConfig:
    """Everything a ``generate`` run used; written as ``config.json`` next to its outputs."""

    model: str
    method: str
    source: str
    driving: str
    source_prompt: str
    driving_prompt: str
    target_prompt: str
    seeds: tuple[int, ...]
    fit: str = "pad"  # authors' code: expand2square, i.e. pad to square with black
    height: int | None = None  # None: the model's native size (512 for SD 2.1-base, paper Sec. 4)
    width: int | None = None
    # the user's (whole configs, or the settings named by flags: imposter.settings.Given) until the job
    # resolves them; config.json holds what the run used
    finetune: FinetuneConfig | Mapping[str, Any] = field(default_factory=FinetuneConfig)
    sampling: SamplingConfig | Mapping[str, Any] = field(default_factory=SamplingConfig)
    adapter: str | None = None
    device: str = "cpu"
    dtype: str = "float32"
    offload: bool = False  # model CPU offload: each model on the GPU only while it runs
    # pose-control's inputs: a pose ControlNet (hub id or folder) and the driving image's pose map (a file,
    # or made by controlnet_aux's OpenPose when detect_pose is "openpose")
    controlnet: str | None = None
    driving_pose_map: str | None = None
    # the detector (imposter.pose_detection.detector_names()) of what is not given: pose-control's map,
    # imposter's keypoints
    detect_pose: str | None = None
    # imposter's inputs: OpenPose JSON files of both images' body joints
    source_keypoints: str | None = None
    driving_keypoints: str | None = None
    # ... and mattes of the figures (None: told from a plain backdrop by colour)
    source_mask: str | None = None
    driving_mask: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        return asdict(self)


# command-line flag (argparse dest) -> FinetuneConfig field; sampling flags are named after their fields
FINETUNE_FLAGS = {
    "train_steps": "steps",
    "lr": "learning_rate",
    "rank": "rank",
    "lora_layers": "lora_layers",
    "train_seed": "seed",
    "gradient_checkpointing": "gradient_checkpointing",
}


def flag_for(section: str, field_name: str) -> str:
    """The setting that sets ``field_name`` of the "sampling" or "finetune" config, as an error names it
    (``$train_steps``: see ``imposter.errors``)."""
    if section == "finetune":
        return "$" + {f: d for d, f in FINETUNE_FLAGS.items()}.get(field_name, field_name)
    return "$" + field_name


class _NotGiven:
    """The value of a setting nobody gave (a flag left unset). Not None: None is a value of its own for some
    settings (``phase_cutoff=None``: every frequency, ``--phase-cutoff all``)."""

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Any = _NotGiven()


def override(config: Any, **changes: Any) -> Any:
    """``dataclasses.replace`` that skips ``NOT_GIVEN`` values and names an unknown field clearly."""
    names = {f.name for f in fields(config)}
    unknown = sorted(set(changes) - names)
    if unknown:
        raise ConfigError(f"unknown setting(s) {unknown} for {type(config).__name__}")
    return replace(config, **{k: v for k, v in changes.items() if v is not NOT_GIVEN})
