"""`gymops completion bash|zsh`: a shell completion script built from the CLI's own parser.

Completes subcommands, each subcommand's flags, and file names elsewhere. Install with
`source <(gymops completion bash)` (bash) or the same line in `~/.zshrc` (zsh, through
bashcompinit).
"""

from __future__ import annotations

import argparse
import sys

from gym_operator import cli

TEMPLATE = """\
_gymops() {
    local cur=${COMP_WORDS[COMP_CWORD]}
    local cmd=""
    local i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in -*) ;; *) cmd=${COMP_WORDS[i]}; break ;; esac
    done
    if [[ -z $cmd ]]; then
        COMPREPLY=($(compgen -W "__COMMANDS__ __TOP_FLAGS__" -- "$cur"))
        return
    fi
    local flags=""
    case $cmd in
__CASES__
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$flags" -- "$cur"))
    else
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}
complete -o filenames -F _gymops gymops
"""
ZSH_PREAMBLE = "autoload -U +X bashcompinit && bashcompinit\n"


def script(shell: str) -> str:
    """The completion script for `shell` (bash or zsh)."""
    parser = cli.build_parser()
    cases = []
    for name in cli.COMMANDS:
        flags = " ".join(_flags(cli.subparser(parser, name)))
        cases.append(f'        {name}) flags="{flags}" ;;')
    text = (
        TEMPLATE.replace("__COMMANDS__", " ".join(cli.COMMANDS))
        .replace("__TOP_FLAGS__", " ".join(_flags(parser)))
        .replace("__CASES__", "\n".join(cases))
    )
    return (ZSH_PREAMBLE + text) if shell == "zsh" else text


def _flags(parser: argparse.ArgumentParser) -> list[str]:
    return [
        flag
        for action in parser._actions
        for flag in action.option_strings
        if flag.startswith("--")
    ]


def main(args: argparse.Namespace) -> int:
    """Print the script; the CLI owns the terminal."""
    sys.stdout.write(script(args.shell))
    return 0
