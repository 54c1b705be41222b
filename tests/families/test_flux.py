"""FLUX.1's pieces alone: the 2x2 patch packing, the flow-matching loss."""

import torch

from imposter.families.base import Conditioning
from imposter.families.flux import FlowMatchingLoss, pack, unpack


def test_unpack_then_repack_is_exact_and_matches_the_pipeline():
    from diffusers import FluxPipeline

    spatial = torch.randn(2, 16, 6, 10)
    tokens = pack(spatial)
    assert tokens.shape == (2, 3 * 5, 64)
    assert torch.equal(unpack(tokens, 6, 10), spatial)
    assert torch.equal(pack(unpack(tokens, 6, 10)), tokens)
    # diffusers' own unpacking takes pixel sizes and the VAE factor (8)
    assert torch.equal(FluxPipeline._unpack_latents(tokens, 48, 80, 8), spatial)


class ExactVelocity(torch.nn.Module):
    """A stand-in transformer that reads x_t and answers the true velocity e - x0 (given x0 and e)."""

    def __init__(self, latents, noise):
        super().__init__()
        self.register_buffer("latents", latents)
        self.register_buffer("noise", noise)
        self.seen = {}

    @property
    def dtype(self):
        return torch.float32

    def forward(self, hidden_states, timestep, **kwargs):
        self.seen = {"hidden_states": hidden_states, "timestep": timestep, **kwargs}
        return (pack(self.noise - self.latents),)


def test_flow_matching_loss_is_zero_for_the_true_velocity_and_noises_as_x_t():
    scheduler_timesteps = torch.linspace(1000, 1, 1000)
    loss = FlowMatchingLoss(scheduler_timesteps, 1000, guidance=3.5)
    latents = torch.randn(2, 4, 4, 6)
    generator = torch.Generator().manual_seed(0)
    noise, timesteps = loss.draw(generator, latents)
    assert noise.shape == latents.shape and timesteps.shape == (2,)
    assert all(t in scheduler_timesteps for t in timesteps)
    model = ExactVelocity(latents, noise)
    conditioning = Conditioning(torch.randn(2, 7, 32), torch.randn(2, 32))
    assert loss(model, latents, conditioning, noise, timesteps).item() == 0.0
    sigmas = (timesteps / 1000).view(-1, 1, 1, 1)
    torch.testing.assert_close(model.seen["hidden_states"], pack((1 - sigmas) * latents + sigmas * noise))
    torch.testing.assert_close(model.seen["timestep"], timesteps / 1000)  # the transformer takes t / 1000
    assert torch.equal(model.seen["guidance"], torch.full((2,), 3.5))
    assert model.seen["img_ids"].shape == (2 * 3, 3) and model.seen["txt_ids"].shape == (7, 3)
    wrong = ExactVelocity(latents, torch.zeros_like(noise))
    assert loss(wrong, latents, conditioning, noise, timesteps).item() > 0.1


def test_a_late_start_samples_the_tail_of_the_pipelines_own_schedule():
    """img2img (--driving-strength): the sigmas from step ``start`` on are those FluxPipeline samples 28 steps
    with at this size, shift included, and the starting point is flow matching's (1 - s) x0 + s e."""
    import numpy as np
    from diffusers import FlowMatchEulerDiscreteScheduler
    from diffusers.pipelines.flux.pipeline_flux import calculate_shift

    from imposter.families.flux import Flux, start_sigmas

    class Pipe:
        scheduler = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15)

    pipe, size = Pipe(), (64, 96)
    mu = calculate_shift(32 * 48, 256, 4096, 0.5, 1.15)
    pipe.scheduler.set_timesteps(sigmas=np.linspace(1.0, 1 / 28, 28), mu=mu)
    full = pipe.scheduler.sigmas.clone()
    assert torch.allclose(start_sigmas(pipe, 28, 10, size), full[10:])
    latents, noise = torch.randn(1, 16, *size), torch.randn(1, 16, *size)
    start = Flux().noised_start(pipe, latents, noise, 28, 10)
    assert torch.allclose(start, (1 - full[10]) * latents + full[10] * noise)
    assert not torch.allclose(full[10], torch.tensor(1 - 10 / 28))  # the shift moved it
