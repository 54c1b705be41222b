"""The Python API: load a model once, prepare a pair, personalize once, generate many seeds.

from imposter import ImPoster, SamplingConfig
imp = ImPoster.from_pretrained("toy")
pair = imp.prepare("dog.png", "a dog", "cat.png", "a cat drinking water from a mug")
learned = imp.personalize(pair, method="imposter")
images = imp.generate(pair, learned, seeds=[0, 1, 2])
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from .config import FinetuneConfig, SamplingConfig
from .errors import ConfigError, ImposterError, ImposterWarning, ModelLoadError
from .families import family_of
from .families.base import Conditioning, Family
from .images import check_size, fit_image, load_image, to_rgb
from .methods import check_compatible, get_method
from .methods.base import Method
from .models import first_line, load_pipeline, resolve_device, resolve_dtype, set_up_pipeline
from .personalizations import (
    EMBEDDINGS_FILE,
    LORA_FILE,
    METADATA_FILE,
    UNET_FILE,
    Personalization,
    recorded_method,
)
from .plugins import named_model
from .prepared import PreparedPair
from .prompts import check_caption, check_token_length, compose_target_prompt
from .retarget import content_box, fitted_keypoints, matte_image, moved_figure, retargeted_image
from .settings import resolve


class ImPoster:
    """A diffusers pipeline (SD 1.x/2.x, SDXL or FLUX.1) wrapped for subject-driven action personalization."""

    def __init__(self, pipe, model: str = "custom", family: Family | None = None):
        self.pipe = pipe
        self.model = model
        self.family = family or family_of(pipe)
        self.controlnet = None  # a pose ControlNet (load_controlnet), read by --method pose-control

    def load_controlnet(self, name: str) -> None:
        """Load a pose ControlNet (hub id or diffusers folder, safetensors) for ``pose-control``."""
        from .controlnet import load_controlnet

        self.controlnet = load_controlnet(name, self.denoiser, self.family.name, self.device)

    @classmethod
    def from_pretrained(
        cls,
        model: str = "toy",
        device: str | None = None,
        dtype: str | torch.dtype | None = None,
        offload: bool = False,
    ) -> ImPoster:
        """Load a hub id, a local diffusers folder, or ``"toy"`` (the bundled toy-world model).

        The model family comes from the checkpoint's ``model_index.json``. ``dtype``: a torch.dtype or its
        name ("float16"); SD and SDXL sample with DDIM (said if the checkpoint had another scheduler).
        ``offload``: model CPU offload (each model on the GPU only while it runs).
        """
        resolved = resolve_device(device)
        return cls(
            load_pipeline(model, resolved, resolve_dtype(dtype, resolved), offload=offload), model=model
        )

    @classmethod
    def from_pipe(cls, pipe, model: str = "custom", ddim: bool = False) -> ImPoster:
        """Wrap a pipeline you already have (diffusers' convention), on its device and dtype.

        It is frozen for our use like a loaded one; its scheduler stays unless ``ddim`` (the paper's sampler).
        """
        return cls(set_up_pipeline(pipe, ddim=ddim), model=model)

    @property
    def device(self) -> torch.device:
        """Where the models run (the GPU under model CPU offload, although the weights rest on the CPU)."""
        return self.pipe._execution_device

    @property
    def dtype(self) -> torch.dtype:
        return self.denoiser.dtype

    @property
    def denoiser(self):
        """The denoiser: the UNet (SD, SDXL) or the transformer (FLUX.1)."""
        return self.family.denoiser(self.pipe)

    @property
    def scheduler(self):
        return self.pipe.scheduler

    # -- encoding ---------------------------------------------------------------------------------

    def encode_prompt(self, prompt: str) -> Conditioning:
        """The conditioning of ``prompt``, uncached: the text encoder's output (1, L, D), padded to the
        tokenizer's length like diffusers, and (SDXL, FLUX.1) the pooled embedding."""
        return self.family.encode(self.pipe, prompt)

    def conditioning(self, pair: PreparedPair, prompt: str) -> Conditioning:
        """:meth:`encode_prompt`, cached on ``pair``."""
        if prompt not in pair.embeds:
            encoded = self.encode_prompt(prompt)
            pair.embeds[prompt] = encoded.embeds
            if encoded.pooled is not None:
                pair.pooled[prompt] = encoded.pooled
        return Conditioning(pair.embeds[prompt], pair.pooled.get(prompt))

    def encode_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """VAE latents (N, C, h, w) of the images (the posterior mean, normalized), float32."""
        return self.family.encode_images(self.pipe, images)

    def decode(self, latents: torch.Tensor) -> list[Image.Image]:
        """Images from clean latents."""
        return self.family.decode(self.pipe, latents)

    def training_loss(self):
        """The family's fine-tuning loss (SD/SDXL: epsilon or v MSE; FLUX.1: flow matching)."""
        return self.family.training_loss(self.pipe)

    # -- the task ---------------------------------------------------------------------------------

    def prepare(
        self,
        source: str | Path | Image.Image,
        source_prompt: str,
        driving: str | Path | Image.Image,
        driving_prompt: str,
        target_prompt: str | None = None,
        fit: str = "pad",
        height: int | None = None,
        width: int | None = None,
        driving_pose_map: str | Path | Image.Image | None = None,
        target_pose_map: str | Path | Image.Image | None = None,
        source_keypoints: str | Path | Mapping[str, Any] | None = None,
        driving_keypoints: str | Path | Mapping[str, Any] | None = None,
        source_mask: str | Path | Image.Image | None = None,
        driving_mask: str | Path | Image.Image | None = None,
    ) -> PreparedPair:
        """Load and fit the images, check the captions, compose the target prompt if none is given.

        ``driving_pose_map``: the driving image's pose map (OpenPose or DensePose render), fitted like the
        images; what ``pose-control`` feeds its ControlNet. ``target_pose_map``: the ground truth's (toy
        world), what ``pose-control-oracle`` feeds it. ``source_keypoints``, ``driving_keypoints``: each
        image's body joints (an OpenPose JSON file, or :mod:`imposter.retarget`'s named joints in that
        image's pixels); with both, the pair also holds the source figure retargeted into the driving pose
        (``imposter`` starts from it). ``source_mask``, ``driving_mask``: mattes of the figures (the
        figure light, the backdrop black; rembg's or SAM's output), fitted like the images; without them
        the retargeting tells a figure from its backdrop by colour."""
        source_prompt = check_caption(source_prompt, "$source_prompt")
        driving_prompt = check_caption(driving_prompt, "$driving_prompt")
        if target_prompt is None:
            target_prompt = compose_target_prompt(source_prompt, driving_prompt)
        else:
            target_prompt = check_caption(target_prompt, "$target_prompt")
        named = named_model(self.model)
        vocabulary_notice = named.vocabulary_notice if named is not None else None
        if vocabulary_notice and (
            notice := vocabulary_notice([source_prompt, driving_prompt, target_prompt])
        ):
            warnings.warn(ImposterWarning(notice), stacklevel=2)
        for name, prompt in (
            ("$source_prompt", source_prompt),
            ("$driving_prompt", driving_prompt),
            ("$target_prompt", target_prompt),
        ):
            for tokenizer in self.family.tokenizers(self.pipe):
                check_token_length(tokenizer, prompt, name)
        side = self.family.native_size(self.pipe)
        width, height = width or side, height or side
        check_size(width, height, self.family.size_multiple(self.pipe))
        originals = [_as_image(image, role) for image, role in ((source, "source"), (driving, "driving"))]
        images = [fit_image(image, width, height, fit) for image in originals]
        latents = self.encode_images(images)
        pair = PreparedPair(
            source_image=images[0],
            driving_image=images[1],
            source_prompt=source_prompt,
            driving_prompt=driving_prompt,
            target_prompt=target_prompt,
            source_latents=latents[:1],
            driving_latents=latents[1:],
        )
        for role, pose_map in (("driving", driving_pose_map), ("target", target_pose_map)):
            if pose_map is not None:
                fitted = fit_image(_as_image(pose_map, f"{role} pose map"), width, height, fit)
                setattr(pair, f"{role}_pose_map", fitted)
        for role, keypoints, original in (
            ("source", source_keypoints, originals[0]),
            ("driving", driving_keypoints, originals[1]),
        ):
            if keypoints is not None:
                keypoints = fitted_keypoints(
                    keypoints, f"{role} keypoints", original.size, width, height, fit
                )
                setattr(pair, f"{role}_keypoints", keypoints)
        if pair.source_keypoints is not None and pair.driving_keypoints is not None:
            boxes = tuple(content_box(image.size, width, height, fit) for image in originals)
            mattes = tuple(
                None if matte is None else fit_image(matte_image(matte, role, original), width, height, fit)
                for matte, role, original in (
                    (source_mask, "source", originals[0]),
                    (driving_mask, "driving", originals[1]),
                )
            )
            pair.retargeted_image = retargeted_image(
                pair.source_image,
                pair.driving_image,
                pair.source_keypoints,
                pair.driving_keypoints,
                boxes,
                mattes,
            )
            pair.retargeted_latents = self.encode_images([pair.retargeted_image])
            pair.retargeted_figure = moved_figure([pair.retargeted_image])
        for prompt in ("", source_prompt, driving_prompt, target_prompt):
            self.conditioning(pair, prompt)
        return pair

    def personalize(
        self,
        pair: PreparedPair,
        method: str | Method = "imposter",
        finetune: FinetuneConfig | None = None,
        progress: bool = True,
    ) -> Personalization:
        """Run the method's learning step (for ImPoster: the LoRA fine-tune on both pairs).

        ``finetune``: the settings to train with (None: the method's defaults on this model's family);
        what defines the method replaces them.
        """
        method = get_method(method) if isinstance(method, str) else method
        method.check_model(self)
        return self.learn(pair, method, resolve(method, self.family, finetune=finetune)[0], progress)

    def learn(
        self, pair: PreparedPair, method: Method, finetune: FinetuneConfig, progress: bool = True
    ) -> Personalization:
        """``personalize`` with settings already resolved (``imposter.settings.resolve``) for a method that
        runs on this model: what a job calls."""
        # left None: the family's (the modules its DreamBooth-LoRA trainer targets; checkpointing if it needs it)
        family = {
            "target_modules": self.family.lora_wide_targets
            if finetune.lora_layers == "wide"
            else self.family.lora_targets,
            "gradient_checkpointing": self.family.gradient_checkpointing,
        }
        config = replace(
            finetune, **{name: value for name, value in family.items() if getattr(finetune, name) is None}
        )
        start = time.perf_counter()
        learned = method.personalize(self, pair, config, progress=progress)
        learned.family, learned.base_model = self.family.name, self.model
        learned.info.setdefault("finetune", config.__dict__ | {"target_modules": list(config.target_modules)})
        learned.info["seconds"] = round(time.perf_counter() - start, 3)
        return learned

    def load_personalization(
        self, directory: str | Path, method: str | Method | None = None
    ) -> Personalization:
        """Read a personalization saved by ``Personalization.save`` (or a diffusers LoRA folder).

        ``method`` None: the method stored with it (a plain LoRA folder: ImPoster's, ``imposter-guided``). A
        method that cannot sample from it, an unreadable folder, or one that does not fit this model is a
        one-line error.
        """
        directory = Path(directory)
        if not directory.is_dir():
            raise ModelLoadError(
                f"$adapter {directory} is not a folder (give the adapter/ folder of an earlier run)"
            )
        metadata = _read_metadata(directory)
        stored = recorded_method(metadata)  # None: a plain LoRA folder, ImPoster's
        method = (
            get_method(method or stored or "imposter-guided") if not isinstance(method, Method) else method
        )
        if stored:
            metadata["method"] = stored
            check_compatible(method, stored, f"$adapter {directory}")
        family = metadata.get("family", self.family.name)
        if family != self.family.name:
            raise ModelLoadError(
                f"$adapter {directory} was learned on a {family} model; this is a {self.family.name} model: "
                "use a checkpoint of that family"
            )
        if not metadata:
            metadata = {"weights": _weights_of(directory), "method": method.name, "info": {}}
        try:
            learned = method.load_personalization(directory, metadata)
        except ImposterError:
            raise
        except Exception as err:  # a truncated safetensors file, a missing tensor: all mean the same
            raise ModelLoadError(
                f"$adapter {directory} could not be read ({first_line(err)}); it may be incomplete: "
                "fine-tune again, or give another adapter folder"
            ) from err
        learned.family, learned.base_model = self.family.name, metadata.get("base_model", "")
        try:
            learned.check_fits(self)
        except (RuntimeError, ValueError, KeyError) as err:
            trained = f" (learned on {learned.base_model})" if learned.base_model else ""
            raise ModelLoadError(
                f"$adapter {directory}{trained} does not fit this model ({self.model}): "
                f"{first_line(err)}; use the base model it was learned on"
            ) from err
        return learned

    def seeded_noise(
        self, seeds: Sequence[int], pair: PreparedPair
    ) -> tuple[torch.Tensor, list[torch.Generator]]:
        """One noise tensor per seed, and each seed's generator, which sampling continues (DDIM's eta noise).

        Drawn on the CPU, so that a seed gives the same noise on every device; a generator per seed, so
        that a seed gives the same image alone or in a batch.
        """
        channels = self.family.latent_channels(self.pipe)
        width, height = pair.size
        factor = self.family.vae_scale_factor(self.pipe)
        shape = (1, channels, height // factor, width // factor)
        generators = [torch.Generator().manual_seed(int(seed)) for seed in seeds]
        noise = [torch.randn(shape, generator=generator) for generator in generators]
        return torch.cat(noise).to(self.device), generators

    def initial_noise(self, seeds: Sequence[int], pair: PreparedPair) -> torch.Tensor:
        """One noise tensor per seed (see ``seeded_noise``)."""
        return self.seeded_noise(seeds, pair)[0]

    def generate_batches(
        self,
        pair: PreparedPair,
        personalization: Personalization,
        seeds: Sequence[int],
        sampling: SamplingConfig | None = None,
        method: str | Method | None = None,
        progress: bool = True,
    ) -> Iterator[list[tuple[int, Image.Image]]]:
        """Yield (seed, image) lists, one per batch of ``sampling.batch_size`` seeds (all at once by default).

        ``sampling``: the settings to sample with (None: the method's defaults on this model's family);
        what defines the method replaces them.
        """
        method = get_method(method or personalization.method) if not isinstance(method, Method) else method
        check_compatible(method, personalization.method)
        method.check_model(self)
        config = resolve(method, self.family, sampling=sampling)[1]
        yield from self.sample_batches(pair, personalization, distinct_seeds(seeds), config, method, progress)

    def sample_batches(
        self,
        pair: PreparedPair,
        personalization: Personalization,
        seeds: Sequence[int],
        sampling: SamplingConfig,
        method: Method,
        progress: bool = True,
    ) -> Iterator[list[tuple[int, Image.Image]]]:
        """``generate_batches`` with settings already resolved (``imposter.settings.resolve``) for a method that
        runs on this model and samples from ``personalization``: what a job calls.

        ``pair.driving_latents``: one driving image for every seed, or one per seed (a driving sequence, where
        seeds may repeat: animate starts every frame from the same noise).
        """
        seeds = [int(s) for s in seeds]
        driving = pair.driving_latents
        size = sampling.batch_size or max(1, len(seeds))
        with personalization.active(self):
            for start in range(0, len(seeds), size):
                chunk = seeds[start : start + size]
                chunk_pair = (
                    pair
                    if len(driving) == 1
                    else replace(pair, driving_latents=driving[start : start + size])
                )
                noise, generators = self.seeded_noise(chunk, pair)
                latents = method.sample(
                    self, chunk_pair, personalization, noise, sampling, progress, generators=generators
                )
                yield list(zip(chunk, self.decode(latents), strict=True))

    def generate(
        self,
        pair: PreparedPair,
        personalization: Personalization,
        seeds: Sequence[int] = (0,),
        sampling: SamplingConfig | None = None,
        method: str | Method | None = None,
        progress: bool = True,
    ) -> list[Image.Image]:
        """Images for ``seeds`` (in order) with ``method`` (default: the one that personalized)."""
        batches = self.generate_batches(pair, personalization, seeds, sampling, method, progress)
        return [image for batch in batches for _, image in batch]


def distinct_seeds(seeds: Sequence[int]) -> list[int]:
    """``seeds`` as whole numbers; ConfigError if one repeats (each seed is one image)."""
    seeds = [int(s) for s in seeds]
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"$seeds has duplicates: {seeds}")
    return seeds


def _as_image(image: str | Path | Image.Image, role: str) -> Image.Image:
    if isinstance(image, Image.Image):
        return to_rgb(image, f"{role} image")
    return load_image(image, role)


def _read_metadata(directory: Path) -> dict:
    """``personalization.json`` of an adapter folder ({} if there is none); ModelLoadError if it is not JSON."""
    path = directory / METADATA_FILE
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelLoadError(
            f"$adapter {directory}: {METADATA_FILE} is not readable JSON ({err}); fine-tune again"
        ) from err


def _weights_of(directory: Path) -> str:
    """What a folder without metadata holds, by its weight files; ModelLoadError if none."""
    for weights, name in (("lora", LORA_FILE), ("unet", UNET_FILE), ("embeddings", EMBEDDINGS_FILE)):
        if (directory / name).exists():
            return weights
    raise ModelLoadError(
        f"$adapter {directory} holds none of {METADATA_FILE}, {LORA_FILE}, {UNET_FILE}, {EMBEDDINGS_FILE}; "
        "give the adapter/ folder written by imposter generate"
    )
