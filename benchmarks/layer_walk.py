"""Follow one ``imposter generate`` run through the package: which files it enters, and where it climbs back up.

    python benchmarks/layer_walk.py            # a tiny random SD pipeline built in code, 2 LoRA steps, 3 DDIM steps

From the parsed command line on, every call from one of our files into another is recorded (``sys.setprofile``). A call *enters* a file when
the caller is another of our files; it *climbs* when the callee sits higher in LAYERS than the caller (the
core calling back into the job or the API). Calls into and out of third-party code are not counted. Prints
the entries per file and every climb, with its caller and callee functions.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
from pathlib import Path

# high to low: a call from a file to one above it is a climb
LAYERS = (
    "cli", "flags", "run", "settings", "engine", "models", "methods", "personalizations", "prepared", "finetune",
    "lora", "families", "controlnet", "sampling", "guidance", "config", "prompts", "images", "plugins", "errors",
    "fileio",
)  # fmt: skip


def layer_of(filename: str, package: Path) -> str | None:
    """The layer name of one of our files (its module, or its subpackage), or None for other code."""
    try:
        parts = Path(filename).resolve().relative_to(package).with_suffix("").parts
    except ValueError:
        return None
    return parts[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    import imposter
    from imposter.cli import build_parser
    from imposter.testing import random_image, save_random_pipeline

    package = Path(imposter.__file__).resolve().parent
    work = Path(tempfile.mkdtemp())
    model = save_random_pipeline("sd", work / "model")
    random_image(work / "source.png", seed=1)
    random_image(work / "driving.png", seed=2)
    entries: collections.Counter[str] = collections.Counter()
    climbs: collections.Counter[str] = collections.Counter()
    rank = {name: index for index, name in enumerate(LAYERS)}

    def profile(frame, event, arg):
        if event != "call" or frame.f_back is None or frame.f_code.co_name == "<module>":
            return
        callee = layer_of(frame.f_code.co_filename, package)
        caller = layer_of(frame.f_back.f_code.co_filename, package)
        if callee is None or caller is None or callee == caller:
            return
        entries[callee] += 1
        if rank.get(callee, len(LAYERS)) < rank.get(caller, len(LAYERS)):
            where = f"{caller}.{frame.f_back.f_code.co_name} -> {callee}.{frame.f_code.co_name}"
            climbs[where] += 1

    argv = [
        "generate", "--model", str(model), "--source", str(work / "source.png"), "--source-prompt", "a dog",
        "--driving", str(work / "driving.png"), "--driving-prompt", "a cat jumping", "--train-steps", "2",
        "--steps", "3", "--k", "1", "--out", str(work / "out"), "--quiet",
    ]  # fmt: skip
    args = build_parser().parse_args(argv)  # the job from here: parsing the command line is not followed
    sys.setprofile(profile)
    try:
        args.func(args)
    finally:
        sys.setprofile(None)
    print("calls entering each file from another of ours:")
    for name, count in sorted(entries.items(), key=lambda item: rank.get(item[0], len(LAYERS))):
        print(f"  {name:18s} {count}")
    print(f"climbs (a lower file calling a higher one): {sum(climbs.values())}")
    for where, count in climbs.most_common():
        print(f"  {count:4d}  {where}")


if __name__ == "__main__":
    main()
