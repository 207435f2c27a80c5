"""`dpo-eval completion bash`: a bash completion script for the command (subcommands, the
options of `new`, `draft-codebook` and `check`, `--help` for the delegated ones; file names
elsewhere)."""

from __future__ import annotations

import argparse

SCRIPT = """# bash completion for dpo-eval (from `dpo-eval completion bash`)
_dpo_eval() {{
    local cur=${{COMP_WORDS[COMP_CWORD]}} opts
    if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=($(compgen -W "{commands} --help" -- "$cur"))
        return
    fi
    case "${{COMP_WORDS[1]}}" in
{cases}
        *) opts="--help" ;;
    esac
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    else
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}}
complete -o filenames -F _dpo_eval dpo-eval
"""


def bash_script(commands: dict[str, argparse.ArgumentParser]) -> str:
    cases = "\n".join(
        f'        {name}) opts="{" ".join(sorted(parser._option_string_actions))}" ;;'
        for name, parser in commands.items() if parser._option_string_actions)
    return SCRIPT.format(commands=" ".join(commands), cases=cases)


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "completion", help="print a shell completion script (bash)",
        description="Print a bash completion script for dpo-eval; load it with "
                    "eval \"$(dpo-eval completion bash)\" (e.g. in ~/.bashrc).")
    parser.add_argument("shell", choices=["bash"])
    parser.set_defaults(run=lambda args: print(bash_script(dict(commands.choices)), end="") or 0)
