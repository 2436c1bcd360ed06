"""The Typer application object and the one place that turns errors into exit codes."""

import os
import sys
from typing import Any

import typer
import typer.core

from tfckpt.errors import ExitCode, TfckptError

# Options that take two values and may repeat (``--sub PATTERN REPLACEMENT``). Typer cannot
# declare a repeatable two-value option, so the group joins each pair into one token before
# parsing and ``options.parse_subs`` splits it again.
PAIR_OPTIONS = frozenset({"--sub"})
PAIR_JOINER = "\x1f"


def join_pair_options(args: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            out.extend(args[i:])
            break
        if arg in PAIR_OPTIONS and i + 2 < len(args):
            out.extend([arg, args[i + 1] + PAIR_JOINER + args[i + 2]])
            i += 3
            continue
        out.append(arg)
        i += 1
    return out


def one_line(message: str) -> str:
    """A message safe to print as one line: control characters (a newline or form feed from a
    hostile file name or token) shown escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


# What the CLI says for an error's ``fix`` (the library parameter that would change the outcome).
FIX_HINTS = {
    "force": "use --force to overwrite it",
    "allow_unchanged": "use --allow-unchanged to write an unchanged copy anyway",
    "prefer": "or use --prefer first|last",
    "add_prefix": "use --add-prefix SCOPE/ or tfckpt merge SRC:SCOPE/ -o OUT",
    "allow_missing": "use --allow-missing to accept them",
    "allow_unmapped": "use --allow-unmapped to leave them out",
    "allow_pickle": "use --allow-pickle (runs code from the file: trusted files only)",
    "strict": "drop --strict to skip them",
    "type": "use --type to say what it is",
    "tags": "choose one with --tags",
    "format": "name it with --to (export) or --from (import): safetensors|npz|npy",
}


def error_line(exc: TfckptError) -> str:
    """The one line the CLI prints for a library error, with the flag that fixes it."""
    message = str(exc)
    hint = FIX_HINTS.get(exc.fix or "")
    return one_line(f"{message}; {hint}" if hint else message)


def _json_requested(args: list[str]) -> bool:
    return "--json" in args[: args.index("--")] if "--" in args else "--json" in args


# The order commands are listed in, as a job goes: find, look, compare and check, edit, move.
WORKFLOW = (
    "ls",
    "vars",
    "graph",
    "diff",
    "verify",
    "scan",
    "check",
    "rename",
    "prune",
    "merge",
    "cast",
    "export",
    "import",
    "presets",
    "convert-pbtxt",
    "help",
)


# One line each in `tfckpt --help`, in WORKFLOW order (the command's own help has the rest).
SHORT_HELP = {
    "ls": "Checkpoints, SavedModels and runs in a directory",
    "vars": "The variables of a checkpoint",
    "graph": "Summarize or check a .meta/.pb/.pbtxt/SavedModel",
    "diff": "Compare two checkpoints (exit 1 on differences)",
    "verify": "Check checksums, shards and values (exit 1 if bad)",
    "scan": "Find ops that reach outside the process",
    "check": "Gate artifacts against a policy file (CI)",
    "rename": "Rename variables (regex, mapping, scopes)",
    "prune": "Drop variables, e.g. optimizer state",
    "merge": "Several checkpoints in one, under scopes",
    "cast": "Floating-point tensors to another float dtype",
    "export": "Weights to safetensors / .npz / .npy (HF presets)",
    "import": "Weights from safetensors / .npz / .npy",
    "presets": "Conversion presets (Hugging Face and your own)",
    "convert-pbtxt": "Binary <-> text protobuf",
    "help": "The help of a command",
}


def keep_indented(text: str | None) -> str | None:
    """Help text whose indented paragraphs (examples) Click prints as they are instead of
    rewrapping them (its ``\\b`` marker)."""
    if not text:
        return text
    paragraphs = text.split("\n\n")
    for i, p in enumerate(paragraphs):
        lines = p.splitlines()
        if lines and all(line.startswith(" ") for line in lines):
            paragraphs[i] = "\b\n" + p
    return "\n\n".join(paragraphs)


class TfckptGroup(typer.core.TyperGroup):
    """Reports ``TfckptError`` as one line on stderr with its exit code; no traceback. With
    ``--json``, stdout also gets a JSON error document, so a script always reads JSON. Lists
    commands in workflow order, each built when first asked for (``defer_commands``)."""

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        info = COMMANDS.get(cmd_name)
        if info is not None and cmd_name not in self.commands:
            from typer.main import get_command_from_info

            command = get_command_from_info(
                info,
                pretty_exceptions_short=app.pretty_exceptions_short,
                rich_markup_mode=app.rich_markup_mode,
            )
            command.short_help = SHORT_HELP.get(cmd_name, command.short_help)
            command.help = keep_indented(command.help)
            self.commands[cmd_name] = command
        return super().get_command(ctx, cmd_name)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self.help = keep_indented(self.help)
        super().format_help(ctx, formatter)

    def list_commands(self, ctx: Any) -> list[str]:
        names = list({*super().list_commands(ctx), *COMMANDS})
        rank = {name: i for i, name in enumerate(WORKFLOW)}
        return sorted(names, key=lambda n: (rank.get(n, len(rank)), n))

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        self._raw_args = list(args)
        return super().parse_args(ctx, join_pair_options(list(args)))

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except TfckptError as exc:
            line = error_line(exc)
            if _json_requested(getattr(self, "_raw_args", [])):
                from tfckpt.render import emit_json

                error = {"type": type(exc).__name__, "message": line, "exit_code": exc.exit_code}
                emit_json(ctx.invoked_subcommand or "tfckpt", {"ok": False, "error": error})
            sys.stderr.write(f"tfckpt: error: {line}\n")
            sys.stderr.flush()
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            sys.stderr.write("tfckpt: interrupted\n")
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
        except BrokenPipeError:
            raise typer.Exit(int(ExitCode.OK)) from None
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # exit codes and usage errors, handled by Typer
        except Exception as exc:
            # A bug in tfckpt, not in the input. Scripts must not read it as exit 1 ("differences
            # found"): one line and exit 2, the traceback with TFCKPT_DEBUG=1 (tests set it).
            if os.environ.get("TFCKPT_DEBUG"):
                raise
            kind = "out of memory" if isinstance(exc, MemoryError) else type(exc).__name__
            sys.stderr.write(
                f"tfckpt: internal error: {kind}: {one_line(str(exc))[:300]} (a bug in tfckpt; "
                "TFCKPT_DEBUG=1 shows the traceback)\n"
            )
            sys.stderr.flush()
            raise typer.Exit(int(ExitCode.ERROR)) from None


app = typer.Typer(
    cls=TfckptGroup,
    name="tfckpt",
    help=(
        "Inspect, compare and edit TensorFlow checkpoints, without loading TensorFlow.\n\n"
        "PATH arguments accept a checkpoint prefix, any of its files (.index, .data-*, .meta), "
        "a directory (the latest checkpoint per its `checkpoint` file, else the newest) or a "
        "SavedModel directory, locally or at a URL: s3://, gs://, http(s):// (read-only) or any "
        "fsspec filesystem (install tfckpt[s3], tfckpt[gcs] or tfckpt[remote]; credentials "
        "and endpoints come from each backend's usual configuration, e.g. AWS_ENDPOINT_URL).\n\n"
        "Examples:\n\n"
        "    tfckpt ls runs/exp1\n\n"
        "    tfckpt vars runs/exp1 --sort bytes --top 10\n\n"
        "    tfckpt rename runs/exp1 out/model.ckpt --add-prefix pretrained/ -n\n\n"
        "Exit codes: 0 ok, 1 differences found / check failed, 2 usage error or bad input. "
        "`tfckpt help COMMAND` (or COMMAND --help) shows a command's options and examples."
    ),
    no_args_is_help=True,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _print_version(value: bool) -> None:
    if value:
        from tfckpt import __version__

        sys.stdout.write(f"tfckpt {__version__}\n")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(
        False,
        "--version",
        "-V",
        help="Print the version and exit.",
        callback=_print_version,
        is_eager=True,
    ),
    anon: bool = typer.Option(
        False, "--anon", help="Read s3:// and gs:// URLs without credentials (public buckets)."
    ),
) -> None:
    """Options of tfckpt itself (before the command)."""
    if anon:
        from tfckpt.api.reading import configure_remote

        configure_remote(anon=True)


@app.command("help")
def help_command(
    ctx: typer.Context,
    command: str | None = typer.Argument(None, help="The command to explain."),
) -> None:
    """Show the help of a command (the same as COMMAND --help).

    Examples:

        tfckpt help rename
    """
    group = ctx.parent.command if ctx.parent is not None else None
    assert isinstance(group, typer.core.TyperGroup)
    if command is None or ctx.parent is None:
        sys.stdout.write(group.get_help(ctx.parent or ctx) + "\n")
        return
    found = group.get_command(ctx, command)
    if found is None:
        import difflib

        close = difflib.get_close_matches(command, group.list_commands(ctx), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise typer.BadParameter(f"no command {command!r}{hint}")
    with found.make_context(command, ["--help"], parent=ctx.parent, resilient_parsing=True) as sub:
        sys.stdout.write(found.get_help(sub) + "\n")


# Every command, by name, in registration order: moved out of ``app.registered_commands`` by
# ``defer_commands`` so that Typer builds a command (inspecting each of its parameters: most of
# the start-up of a short command) only when it is run, listed or completed.
COMMANDS: dict[str, Any] = {}


def defer_commands() -> None:
    """Build the registered commands on demand (``TfckptGroup.get_command``)."""
    from typer.main import get_command_name

    for info in app.registered_commands:
        if info.callback is not None:
            COMMANDS[info.name or get_command_name(info.callback.__name__)] = info
    app.registered_commands = []
