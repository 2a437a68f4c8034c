"""`completion bash`: a bash completion script for runner.py, written from the parser itself (so
it always knows every verb and option there is)."""

from __future__ import annotations

import argparse
from typing import Any

from gpubox.flags import Flags

SHELLS = ("bash",)


def add_parser(subparsers: Any, flags: Flags) -> None:
    made = flags.verb(subparsers, "completion", "print a shell completion script (bash)", cmd_completion)
    made.add_argument("shell", choices=SHELLS, help="the shell to complete in")


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return sorted(option for action in parser._actions for option in action.option_strings)  # noqa: SLF001


def _verbs(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # noqa: SLF001  (argparse keeps its subcommands here)
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return dict(action.choices)
    return {}


def bash_script(parser: argparse.ArgumentParser) -> str:
    """Completes the verb, then that verb's options (and an action's, for image and snapshots)."""
    cases = []
    for verb, sub in sorted(_verbs(parser).items()):
        words = _options(sub) + sorted(_verbs(sub)) + [choice for action in sub._actions  # noqa: SLF001
                                                       if not action.option_strings and action.choices
                                                       and not isinstance(action, argparse._SubParsersAction)  # noqa: SLF001
                                                       for choice in action.choices]
        cases.append(f'        {verb}) opts="{" ".join(words)}" ;;')
    verbs = " ".join(sorted(_verbs(parser)))
    globals_ = " ".join(_options(parser))
    return "\n".join([
        "# bash completion for gpubox's runner.py: source <(python runner.py completion bash)",
        "_gpubox_runner() {",
        '    local cur="${COMP_WORDS[COMP_CWORD]}" verb="" word opts',
        '    for word in "${COMP_WORDS[@]:1:COMP_CWORD-1}"; do',
        '        case "$word" in -*) ;; *) verb="$word"; break ;; esac',
        "    done",
        '    case "$verb" in',
        f'        "") opts="{verbs} {globals_}" ;;',
        *cases,
        '        *) opts="" ;;',
        "    esac",
        '    COMPREPLY=($(compgen -W "$opts" -- "$cur"))',
        "}",
        "complete -o default -F _gpubox_runner runner.py",
        "",
    ])


def cmd_completion(args: argparse.Namespace) -> int:
    print(bash_script(args.root_parser), end="")  # the whole parser, which main() hands every verb
    return 0
