"""The ``facecli`` command line: parse arguments, call the library, render what it returns.

One module per command group, each with its own ``typer.Typer`` joined here:
``recognition`` (detect, embed, enroll, verify, identify, cluster, search),
``video`` (watch), ``management`` (models, gallery, calibrate) and
``evaluation`` (eval). Shared options live in ``options``; rows and their
tables in ``facecli.render``.

Exit codes (all commands): 0 success / positive decision, 1 negative
decision (verify: different people; identify: nobody recognised; detect and
embed: some image had no face), 2 error (bad input, missing model or gallery,
usage). Results go to stdout (a table, or JSON Lines with ``--json``); logs,
warnings and progress go to stderr.
"""

from __future__ import annotations

import os
import sys

import typer

from facecli.cli import evaluation, management, recognition, video
from facecli.cli.options import EXIT_ERROR, message, output
from facecli.errors import FaceCliError

app = typer.Typer(
    name="facecli",
    help="Face verification and identification: FaceNet and SFace on ONNX Runtime.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
for group in (recognition, video, management, evaluation):
    app.add_typer(group.app)


def main() -> None:
    """Entry point: one line on stderr and exit 2 for every failure, never a traceback.

    Usage errors are typer's (exit 2 with the usage); a FaceCliError is any
    failure the user can act on. Anything else is a bug: it is still one line
    and exit 2, since exit 1 means "not recognized" to a script;
    ``FACECLI_DEBUG=1`` shows its traceback.
    """
    try:
        app()
    except FaceCliError as exc:
        output().error(message(exc))
        sys.exit(EXIT_ERROR)
    except BrokenPipeError:
        # the reader went away (e.g. `| head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(EXIT_ERROR)
    except Exception as exc:
        if os.environ.get("FACECLI_DEBUG"):
            raise
        reason = (str(exc).strip().splitlines() or [""])[0]
        output().error(f"{_command()}: unexpected {type(exc).__name__}{': ' + reason if reason else ''} "
                       "(a bug: FACECLI_DEBUG=1 shows where)")
        sys.exit(EXIT_ERROR)


def _command() -> str:
    """The command being run, as typed (``identify``, ``gallery list``), to name what failed."""
    words = [a for a in sys.argv[1:] if not a.startswith("-")]
    groups = {name for name, cmd in typer.main.get_command(app).commands.items() if hasattr(cmd, "commands")}
    return " ".join(words[:2] if words and words[0] in groups else words[:1]) or "facecli"
