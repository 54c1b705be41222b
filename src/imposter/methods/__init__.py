"""Methods by name: ImPoster, Baseline++, the paper's ablations, the authors' release, peers, and the
reference rows (copies, model-free tricks, the pretrained model from text) every table shows, and the
zero-shot editor a user tries first (FLUX.1 Kontext).

Each entry is imported only when asked for, so a method's module can use anything below it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
    from .base import Method

# name -> (module, factory name, argument)
_REGISTRY: dict[str, tuple[str, str, str | None]] = {
    "imposter": ("retarget", "method", "imposter"),
    "imposter-guided": ("imposter", "ImPosterMethod", None),
    "imposter-paper": ("imposter", "variant", "imposter-paper"),
    "baseline++": ("imposter", "variant", "baseline++"),
    "imposter-k0": ("imposter", "variant", "imposter-k0"),
    "imposter-no-guidance": ("imposter", "variant", "imposter-no-guidance"),
    "imposter-no-phase": ("imposter", "variant", "imposter-no-phase"),
    "imposter-no-amp": ("imposter", "variant", "imposter-no-amp"),
    "imposter-subject": ("imposter", "variant", "imposter-subject"),
    "subject-lora": ("imposter", "variant", "subject-lora"),
    "imposter-attend": ("imposter", "variant", "imposter-attend"),
    "imposter-sdedit": ("imposter", "variant", "imposter-sdedit"),
    "imposter-authors": ("authors", "AuthorsMethod", None),
    "hiper": ("hiper", "HiPerMethod", None),
    "adi": ("adi", "ADIMethod", None),
    "adi+lora": ("adi", "ADILoraMethod", None),
    "copy-source": ("references", "reference", "copy-source"),
    "copy-driving": ("references", "reference", "copy-driving"),
    "phase-swap": ("references", "reference", "phase-swap"),
    "guidance-only": ("references", "reference", "guidance-only"),
    "text-only": ("references", "reference", "text-only"),
    "retarget-warp": ("retarget", "method", "retarget-warp"),
    "sdedit": ("sdedit", "SDEditMethod", None),
    "pose-control": ("pose_control", "PoseControlMethod", None),
    "pose-control-oracle": ("pose_control", "PoseControlMethod", "target"),
    "kontext": ("kontext", "KontextMethod", None),
}

METHOD_NAMES: tuple[str, ...] = tuple(_REGISTRY)
# earlier names still understood: imposter-retarget became the default, imposter (issue 19)
ALIASES = {"imposter-retarget": "imposter"}


def get_method(name: str) -> Method:
    """The method called ``name``; ConfigError listing the valid names otherwise."""
    name = ALIASES.get(name, name)
    if name not in _REGISTRY:
        raise ConfigError(f"unknown method {name!r}; choose one of: {', '.join(METHOD_NAMES)}")
    module, factory, argument = _REGISTRY[name]
    build = getattr(importlib.import_module(f"{__name__}.{module}"), factory)
    return build(argument) if argument is not None else build()


def check_compatible(method: Method, learned_by: str, where: str = "this personalization") -> None:
    """ConfigError unless ``method`` samples from what ``learned_by`` learns (the same fine-tune kind).

    ImPoster, Baseline++ and the ablations share one LoRA; HiPer, ADI, the authors' release each learn
    their own. An unknown ``learned_by`` (someone's own method) is not checked.
    """
    if learned_by == method.name or learned_by not in _REGISTRY:
        return
    if get_method(learned_by).finetune_kind != method.finetune_kind:
        raise ConfigError(
            f"{where} was learned by $method {learned_by}, which $method {method.name} cannot sample "
            f"from; use $method {learned_by} (or leave $method out), or fine-tune again"
        )
