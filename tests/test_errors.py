"""Error messages name settings as ``$name``; each front end writes them its way, a user's text stays as typed."""

import argparse
import re
from pathlib import Path

import pytest

import imposter
from imposter.cli import build_parser
from imposter.errors import SETTINGS, ConfigError, PromptError, quoted


def dests(parser: argparse.ArgumentParser) -> set[str]:
    """Every dest of ``parser`` and of its subcommands' parsers."""
    found = set()
    for action in parser._actions:
        found.add(action.dest)
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= dests(sub)
    return found


def test_every_setting_a_message_names_is_a_flag_of_the_command_line():
    not_settings = {"help", "version", "command", "toy_command"}  # argparse's own and the subcommands' names
    assert SETTINGS == dests(build_parser()) - not_settings
    package = Path(imposter.__file__).parent
    named = {
        name
        for path in package.rglob("*.py")
        if path.name != "errors.py"
        for name in re.findall(r"\$([a-z][a-z0-9_]*)", path.read_text())
    }
    assert named and named <= SETTINGS, named - SETTINGS


def test_a_users_dollar_signs_stay_as_typed_and_settings_become_flags():
    error = PromptError("$driving_prompt 'a $5 dog from $HOME' has no action; fix $driving_prompt")
    assert str(error) == "--driving-prompt 'a $5 dog from $HOME' has no action; fix --driving-prompt"
    assert error.settings == ("driving_prompt",)
    labelled = ConfigError("$k 9 is more than $steps; a $dog stays").render(lambda name: name.upper())
    assert labelled == "K 9 is more than STEPS; a $dog stays"
    # a caption quoted with quoted() stays as typed even where it spells a setting
    caption = "a $k dog"
    assert (
        str(PromptError(f"caption {quoted(caption)} is bad; fix $k")) == "caption 'a $k dog' is bad; fix --k"
    )


def test_a_caption_with_dollar_signs_is_shown_as_typed():
    from imposter.prompts import split_subject

    with pytest.raises(PromptError) as raised:
        split_subject("a $method $5 note")
    assert "'a $method $5 note'" in str(raised.value) and str(raised.value).endswith("--target-prompt")
