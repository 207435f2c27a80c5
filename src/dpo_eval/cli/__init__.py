"""The `dpo-eval` command: one entry point for starting, checking, running and delivering a study.

Conventions shared by every subcommand:

- ``dpo-eval COMMAND --help`` describes the command; ``--project DIR`` names the project (the
  folder holding ``Snakefile`` and ``config/config.yaml``; default: the one containing the
  current directory).
- A problem the user can fix is printed as one ``ERROR: ...`` message on stderr, without a
  traceback; results go to stdout.
- Exit codes: 0 done, 1 problems found in the data or configuration, 2 invalid command line.
  ``plan``, ``send`` and ``resolve`` keep the delivery codes 3-9 documented in the README.

``simulate``, ``fit``, ``plan``, ``send`` and ``resolve`` hand their arguments to the module entry
points (``python -m dpo_eval.simulate``, ``dpo_eval.analysis.models``, ``dpo_eval.delivery``), imported only
when used, so that ``dpo-eval --help`` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
from pathlib import Path

from dpo_eval.core.errors import UserError, user_message

PROG = "dpo-eval"
OK, PROBLEMS, USAGE = 0, 1, 2

# Subcommands run by another module's main(): name -> (module, arguments put first, help).
DELEGATED = {
    "simulate": ("dpo_eval.simulate", [],
                 "write a simulated study (raw exports and its ground truth) with the seeded generator"),
    "fit": ("dpo_eval.analysis.models", ["fit"],
            "fit the primary mixed model to a model frame CSV (FRAME.csv OUT.csv)"),
    "plan": ("dpo_eval.delivery.cli", ["plan"],
             "show who would get which message: send / skip / changed / unresolved"),
    "send": ("dpo_eval.delivery.cli", ["send"], "send the outbox over SMTP (never twice)"),
    "resolve": ("dpo_eval.delivery.cli", ["resolve"], "record the outcome of an unresolved send"),
}
# What the delegated modules call themselves in their --help, and what it reads as here.
_OLD_PROGS = {"python -m dpo_eval.simulate": f"{PROG} simulate",
              "python -m dpo_eval.analysis.models": PROG, "python -m dpo_eval.delivery": PROG}


def find_project(start: str | Path | None = None) -> Path:
    """The project: the nearest of ``start`` (default: the current directory) and its parents
    that holds a Snakefile and config/config.yaml."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "Snakefile").is_file() and (folder / "config" / "config.yaml").is_file():
            return folder
    raise UserError(f"{here} is not inside a dpo_eval project (no Snakefile and config/config.yaml "
                    "in it or its parents). What to do: run the command in the project, give "
                    f"--project DIR, or create a study with '{PROG} new DIR'")


def add_project_option(parser: argparse.ArgumentParser) -> None:
    """The ``--project DIR`` option every subcommand that works on a project shares."""
    parser.add_argument("--project", help="the project (default: the one containing the current directory)")


def project_of(args: argparse.Namespace) -> Path:
    project = getattr(args, "project", None)
    if project is None:
        return find_project()
    project = Path(project).resolve()
    if not (project / "config" / "config.yaml").is_file():
        raise UserError(f"{project}: no config/config.yaml. What to do: give the folder of a "
                        f"project, or create one with '{PROG} new DIR'")
    return project


@contextlib.contextmanager
def _renamed_progs():
    """Let the delegated modules' argument parsers call themselves `dpo-eval ...` in their help
    and usage messages (they name their `python -m` form, which keeps working)."""
    original = argparse.ArgumentParser.__init__

    def init(self, *args, **kwargs):
        if kwargs.get("prog") in _OLD_PROGS:
            kwargs["prog"] = _OLD_PROGS[kwargs["prog"]]
        original(self, *args, **kwargs)

    argparse.ArgumentParser.__init__ = init
    try:
        yield
    finally:
        argparse.ArgumentParser.__init__ = original


def run_delegated(name: str, argv: list[str]) -> int:
    module_name, first, _ = DELEGATED[name]
    module = importlib.import_module(module_name)
    with _renamed_progs():
        status = module.main([*first, *argv])
    return OK if status is None else int(status)


def _parser() -> argparse.ArgumentParser:
    from dpo_eval.cli import check, completion, draft, new

    parser = argparse.ArgumentParser(
        prog=PROG, description="Start, check, run and deliver a DPO program evaluation study.",
        epilog="Exit codes: 0 done, 1 problems found in the data or configuration, 2 invalid "
               "command line (plan/send/resolve: see README, 'Sending the reports'). "
               f"'{PROG} COMMAND --help' describes a command.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    new.add_parser(commands)
    draft.add_parser(commands)
    check.add_parser(commands)
    for name, (_, _, text) in DELEGATED.items():
        # Parsed by the module itself (run_delegated): listed here for the overview only.
        commands.add_parser(name, help=text, add_help=False)
    completion.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in DELEGATED:
            return run_delegated(argv[0], argv[1:])
        args = _parser().parse_args(argv)
        return args.run(args)
    except UserError as error:
        print(user_message(error), file=sys.stderr)
        return PROBLEMS
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
