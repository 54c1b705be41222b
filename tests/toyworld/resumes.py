"""The check every resumable trainer passes: killed mid-way and run again, it ends as if never stopped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch


class Killed(Exception):
    """A training run killed mid-way (raised from a forward hook)."""


def assert_resumes_exactly(run, folder: Path, kill_at_call: int = 4, checkpoint_step: int = 2) -> None:
    """``run(checkpoints, denoiser_hook)`` trains from scratch into ``checkpoints`` and returns (losses, weights);
    killed at the denoiser's ``kill_at_call``-th forward (after the checkpoint at ``checkpoint_step``), then
    run again, it must end with the losses and weights of an uninterrupted run."""
    straight_losses, straight = run(folder / "straight", None)
    calls = {"n": 0}

    def kill(module, args):
        calls["n"] += 1
        if calls["n"] == kill_at_call:
            raise Killed

    with pytest.raises(Killed):
        run(folder / "resumed", kill)
    assert json.loads((folder / "resumed" / "progress.json").read_text())["step"] == checkpoint_step
    resumed_losses, resumed = run(folder / "resumed", None)
    assert resumed_losses == straight_losses
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
