"""Option groups (`with_options`): the shared options of the create, batch and resume commands."""

from __future__ import annotations

import inspect
from typing import Annotated

import attrs
import typer
from typer.testing import CliRunner

from aivideo_async.cli._commands import app
from aivideo_async.cli._options import with_options

Loud = Annotated[bool, typer.Option("--loud", help="Shout.")]
Times = Annotated[int, typer.Option("--times", help="How often.")]
Name = Annotated[str, typer.Option("--name", help="Whom to greet.")]


@attrs.frozen(kw_only=True)
class Style:
    loud: Loud = False


@attrs.frozen(kw_only=True)
class Greeting:
    times: Times = 1
    style: Style
    name: Name = "world"


@with_options
def greet(word: str, *, options: Greeting) -> str:
    text = " ".join([f"{word} {options.name}"] * options.times)
    text = text.upper() if options.style.loud else text
    typer.echo(text)
    return text


def test_a_group_adds_its_fields_after_the_commands_own_nested_groups_flattened() -> None:
    assert list(inspect.signature(greet).parameters) == ["word", "times", "loud", "name"]
    assert greet(word="hi", times=2, loud=True, name="fox") == "HI FOX HI FOX"


def test_typer_parses_a_group_like_any_options() -> None:
    cli = typer.Typer()
    cli.command()(greet)
    result = CliRunner().invoke(cli, ["hi", "--times", "2", "--name", "owl", "--loud"])
    assert result.exit_code == 0, result.output
    assert result.output == "HI OWL HI OWL\n"
    defaults = CliRunner().invoke(cli, ["hey"])
    assert defaults.output == "hey world\n"


CREATE_OPTIONS = ["--base-url", "--yes", "--wait", "--json", "--journal", "--key"]


def _options(*path: str) -> list[str]:
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    return [p.opts[0] for p in command.params]


def test_every_create_command_ends_with_the_shared_create_options() -> None:
    for path in (
        ("miraflow", "create-video"),
        ("miraflow", "generate-image"),
        ("miraflow", "edit-image"),
        ("miraflow", "inpaint"),
        ("aivideomaker", "generate"),
        ("nemo", "export"),
    ):
        assert _options(*path)[-len(CREATE_OPTIONS) :] == CREATE_OPTIONS, path
        assert "--out" in _options(*path), path
    assert _options("miraflow", "generate-image") == [
        "--prompt",
        "--name",
        "--aspect-ratio",
        "--negative-prompt",
        "--seed",
        "--out",
        *CREATE_OPTIONS,
    ]


def test_batch_and_resume_share_their_follow_options() -> None:
    follow = ["--download", "--report", "--base-url", "--poll-initial", "--poll-cap", "--plain"]
    assert _options("batch") == ["manifest", "--journal", "--concurrency", *follow]
    assert _options("resume") == ["--journal", *follow]
