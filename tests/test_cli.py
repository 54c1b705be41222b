"""The command line: generate end to end, resume, adapters, and one-line errors."""

import json

import pytest

from imposter import __version__
from imposter.cli import main

FAST = ["--method", "imposter-guided", "--train-steps", "6", "--steps", "6", "--k", "2", "--quiet"]


@pytest.fixture
def base_args(tiny_model, pair_files):
    return [
        "generate", "--model", str(tiny_model),
        "--source", str(pair_files["source"]), "--source-prompt", "a dog",
        "--driving", str(pair_files["driving"]), "--driving-prompt", "a cat drinking water from a mug",
    ]  # fmt: skip


def test_generate_writes_images_grid_config_and_adapter(base_args, tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*base_args, "--seeds", "0", "1", "--out", str(out), *FAST]) == 0
    assert "a dog drinking water from a mug" in capsys.readouterr().out
    assert {p.name for p in out.iterdir()} >= {
        "seed_0.png",
        "seed_1.png",
        "grid.png",
        "config.json",
        "adapter",
    }
    config = json.loads((out / "config.json").read_text())
    assert config["status"] == "done"
    assert config["environment"]["imposter"] == __version__
    run = config["run"]
    assert run["target_prompt"] == "a dog drinking water from a mug"
    assert run["sampling"]["k"] == 2 and run["sampling"]["guidance_scale"] == 7.5
    assert run["finetune"]["steps"] == 6 and run["finetune"]["rank"] == 4
    assert run["seeds"] == [0, 1] and run["device"] == "cpu"
    assert (out / "adapter" / "pytorch_lora_weights.safetensors").exists()


def test_rerun_resumes_and_adds_seeds(base_args, tmp_path, capsys):
    out = tmp_path / "run"
    main([*base_args, "--seeds", "0", "--out", str(out), *FAST])
    first = (out / "seed_0.png").read_bytes()
    adapter = (out / "adapter" / "pytorch_lora_weights.safetensors").stat().st_mtime_ns
    capsys.readouterr()
    assert main([*base_args, "--seeds", "0", "1", "--out", str(out), *FAST]) == 0
    said = capsys.readouterr().out
    assert "reusing the adapter" in said and "1 of 2 seeds already written" in said
    assert (out / "seed_0.png").read_bytes() == first
    assert (out / "adapter" / "pytorch_lora_weights.safetensors").stat().st_mtime_ns == adapter
    assert (out / "seed_1.png").exists()


def test_other_settings_in_the_same_folder_are_refused(base_args, tmp_path, capsys):
    out = tmp_path / "run"
    main([*base_args, "--out", str(out), *FAST])
    assert main([*base_args, "--out", str(out), *FAST, "--k", "3"]) == 2
    err = capsys.readouterr().err
    assert "other settings" in err and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert main([*base_args, "--out", str(out), *FAST, "--k", "3", "--overwrite"]) == 0


def test_adapter_flag_skips_finetuning_and_reproduces_images(base_args, tmp_path, capsys):
    main([*base_args, "--seeds", "4", "--out", str(tmp_path / "a"), *FAST])
    capsys.readouterr()
    main(
        [
            *base_args,
            "--seeds",
            "4",
            "--out",
            str(tmp_path / "b"),
            "--adapter",
            str(tmp_path / "a" / "adapter"),
            *FAST,
        ]
    )
    assert "skipping fine-tuning" in capsys.readouterr().out
    assert (tmp_path / "a" / "seed_4.png").read_bytes() == (tmp_path / "b" / "seed_4.png").read_bytes()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--k", "9"], "--k 9 must be between 0 and the number of steps"),
        (["--amp-scale", "-1"], "guidance scales must be >= 0"),
        (["--method", "nope"], "unknown method 'nope'"),
        (["--method", "baseline++", "--phase-scale", "0.1"], "contradicts --method baseline++"),
        (["--method", "imposter-paper", "--phase-cutoff", "0.2"], "contradicts --method imposter-paper"),
        (["--driving-strength", "1.5"], "--driving-strength must be in (0, 1]"),
        (["--method", "sdedit", "--k", "3"], "contradicts --method sdedit"),
    ],
)
def test_bad_settings_are_one_line_errors(base_args, tmp_path, capsys, extra, message):
    assert main([*base_args, "--out", str(tmp_path / "x"), *FAST, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and err.startswith("error: ")


def test_missing_image_is_a_one_line_error(tiny_model, tmp_path, capsys):
    code = main(
        [
            "generate",
            "--model",
            str(tiny_model),
            "--source",
            str(tmp_path / "no.png"),
            "--source-prompt",
            "a dog",
            "--driving",
            str(tmp_path / "no2.png"),
            "--driving-prompt",
            "a cat dancing",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2
    assert (
        capsys.readouterr().err.strip()
        == f"error: source image not found: {tmp_path / 'no.png'} (check the path)"
    )


def test_out_of_gpu_memory_is_one_line_saying_what_to_lower(base_args, tmp_path, capsys, monkeypatch):
    import torch

    import imposter.run

    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(imposter.run, "run_generate", out_of_memory)
    assert main([*base_args, "--out", str(tmp_path / "x"), *FAST]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: out of GPU memory")
    assert "--batch-size" in err and "--dtype" in err


def test_the_toy_model_says_what_it_knows_when_a_caption_is_outside_it(pair_files, tmp_path):
    import warnings

    from imposter.toyworld import world

    def toy_notices(argv):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert main(argv) == 0
        return [str(w.message) for w in caught if "toy model" in str(w.message)]

    args = [
        "generate", "--source", str(pair_files["source"]), "--source-prompt", "a monkey",
        "--driving", str(pair_files["driving"]), "--driving-prompt", "a woman playing violin",
        "--out", str(tmp_path / "toy"), "--train-steps", "1", "--steps", "2", "--k", "1", "--quiet",
        "--method", "imposter-guided",
    ]  # fmt: skip
    said = toy_notices(args)
    assert len(said) == 1 and "\n" not in said[0]
    assert "'monkey'" in said[0] and "'violin'" in said[0] and world.SUBJECT_NAMES[-1] in said[0]
    assert world.ACTIONS[-1] in said[0] and "--model stable-diffusion-v1-5/stable-diffusion-v1-5" in said[0]
    subject, action = world.SUBJECT_NAMES[0], world.ACTIONS[0]
    args[4], args[8] = f"a {subject}", f"a {world.SUBJECT_NAMES[1]} {action}"
    args[10] = str(tmp_path / "toy2")
    assert toy_notices(args) == []


def test_phase_cutoff_all_is_the_paper_recipe_every_frequency():
    from imposter.cli import build_parser
    from imposter.flags import named_settings
    from imposter.guidance import low_pass_mask
    from imposter.methods import get_method
    from imposter.settings import resolve

    def sampling(*flags):
        args = build_parser().parse_args(["generate", "--source", "s", "--source-prompt", "a dog", "--driving",
                                          "d", "--driving-prompt", "a cat dancing", *flags])  # fmt: skip
        method = get_method(args.method or "imposter-guided")
        return resolve(method, None, *named_settings(args))[1]

    assert sampling().phase_cutoff == 0.35  # unset: the method's default
    assert sampling("--phase-cutoff", "all").phase_cutoff is None  # one spelling of "every frequency"
    assert sampling("--phase-cutoff", "0.2").phase_cutoff == 0.2
    # the paper's recipe guides every frequency, so saying so again is no contradiction
    assert sampling("--method", "imposter-paper", "--phase-cutoff", "all").phase_cutoff is None
    assert low_pass_mask(16, 16, None) is None and not bool(low_pass_mask(16, 16, 0.35).all())
