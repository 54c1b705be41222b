"""The finished stages of a resumable toy training run (``OUT.work/``): the settings they were made with and
their timings."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from ..errors import ConfigError
from ..fileio import write_json


class Stages:
    """Finished stages of one training run, kept in ``OUT.work/`` so that a killed run resumes; a rerun whose
    settings differ only in ``restartable`` ones starts the denoiser afresh and keeps the other stages."""

    def __init__(
        self,
        folder: Path,
        settings: dict,
        log: Callable[[str], None],
        restartable: frozenset[str],
    ):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        recorded = folder / "settings.json"
        settings = json.loads(json.dumps(settings))
        if recorded.is_file() and (before := json.loads(recorded.read_text())) != settings:
            changed = {k for k in settings["train"] if before.get("train", {}).get(k) != settings["train"][k]}
            same_rest = {k: v for k, v in before.items() if k != "train"} == {
                k: v for k, v in settings.items() if k != "train"
            }
            if not (same_rest and changed <= restartable):
                raise ConfigError(
                    f"{folder} holds a training run with other settings; delete it, or run with the same settings"
                )
            shutil.rmtree(folder / "denoiser", ignore_errors=True)
            log(
                f"denoiser settings changed ({', '.join(sorted(changed))}): keeping the VAE and classifier stages"
            )
        write_json(recorded, settings)
        self.timings_path = folder / "timings.json"
        self.timings = json.loads(self.timings_path.read_text()) if self.timings_path.is_file() else {}

    def done(self, name: str, seconds: float) -> None:
        self.timings[name] = self.timings.get(name, 0.0) + seconds
        write_json(self.timings_path, self.timings)
