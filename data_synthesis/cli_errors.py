"""One-line errors for every homeloc CLI: the parser class, the error wrapper, option types.

Bad usage (an option out of range, an unknown choice) exits with 2 and failed runs with 1, each
with one line on stderr that names the option or file and the problem; ``--debug`` (or ``-v``)
shows the traceback instead. The CLIs of data_synthesis, train, export and eval use this module
(it lives in the lowest layer with a CLI).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable

from jsonargparse import ArgumentParser
from jsonargparse.typing import ClosedUnitInterval, NonNegativeInt, PositiveFloat, PositiveInt

# Option types checked at parse time (a bad value is refused with one line naming the option).
__all__ = ["ClosedUnitInterval", "NonNegativeInt", "OneLineErrors", "OneLineParser", "PositiveFloat",
           "PositiveInt", "UsageError", "debug_requested", "one_line", "run_guarded"]  # fmt: skip

DEBUG_FLAGS = ("--debug", "-v")  # anywhere on the command line: the traceback instead of one line


class UsageError(ValueError):
    """An option value found wrong after parsing (e.g. inside a config block): exit code 2."""


class OneLineErrors:
    """Mixin for a jsonargparse parser class: a bad option is reported as one line,
    ``PROG: error: --opt: problem (see PROG --help)``, exit code 2."""

    def error(self, message: str, ex: Exception | None = None):
        if not self.exit_on_error:
            return super().error(message, ex)
        parser = getattr(ex, "subcommand_parser", None) or self
        prog = parser.prog.replace(" [options]", "")
        sys.stderr.write(f"{prog}: error: {option_message(message, parser)} (see {prog} --help)\n")
        self.exit(2)


class OneLineParser(OneLineErrors, ArgumentParser):
    """jsonargparse's parser with one-line errors (every homeloc CLI parser)."""


def _option_name(key: str, parser: ArgumentParser) -> str:
    for action in parser._actions:
        if action.dest == key and action.option_strings:
            return max(action.option_strings, key=len)
    return f"--{key}"


def option_message(message: str, parser: ArgumentParser | None = None) -> str:
    """jsonargparse's multi-line message as one line naming the option (``--num: must be > 0, got -1``)."""
    m = re.match(r'\s*Parser key "([^"]+)":\s*(.*)', message, re.S)
    if m:
        key, rest = m.groups()
        name = _option_name(key, parser) if parser is not None else f"--{key}"
        message = f"{name}: {rest}"
    message = re.sub(r"Not of type \w+: (.+?) does not conform to restriction (.+)", _restriction, message)
    message = re.sub(
        r"Expected a typing\.Literal\[(.*)\]\. Got value: (.*)", r"must be one of \1, got \2", message
    )
    return _optional(one_line(message))


def _optional(message: str) -> str:
    """An optional option (``X | None``) out of X's range: jsonargparse lists every Union subtype's
    error; say the range and the value, as for X alone (``--share: must be > 0 and <= 1 or null, got 0``)."""
    m = re.search(
        r"Does not validate against any of the Union subtypes .*?does not conform to restriction (.+?) - "
        r"Expected a <class 'NoneType'>.*Given value: (.*)$",
        message,
    )
    if m is None:
        return message
    return f"{message[: m.start()]}must be {_bound(m.group(1))} or null, got {m.group(2)}"


def _restriction(m: re.Match) -> str:
    return f"must be {_bound(m.group(2))}, got {m.group(1)}"


def _bound(restriction: str) -> str:
    """jsonargparse's restriction in words: "v>=0 and v<=1" -> ">= 0 and <= 1"."""
    return re.sub(r"v\s*([<>=!]+)\s*", r"\1 ", restriction)


def one_line(text: object) -> str:
    """Whitespace (newlines included) collapsed to single spaces."""
    return " ".join(str(text).split())


def debug_requested(argv: list[str] | None) -> tuple[bool, list[str]]:
    """(whether --debug / -v is in argv, argv without it): the flag may come anywhere."""
    args = list(sys.argv[1:] if argv is None else argv)
    kept = [a for a in args if a not in DEBUG_FLAGS]
    return len(kept) != len(args), kept


def run_guarded(
    prog: str,
    body: Callable[[], int],
    debug: bool,
    usage_errors: tuple[type[BaseException], ...] = (),
    run_errors: tuple[type[BaseException], ...] = (),
) -> int:
    """body(), with its errors as one line on stderr: 2 for usage_errors (and UsageError), 1 for
    run_errors and anything unexpected; the traceback instead when debug."""
    try:
        return body()
    except (UsageError, *usage_errors) as e:
        code, err = 2, e
    except (*run_errors, OSError) as e:
        code, err = 1, e
    except Exception as e:  # noqa: BLE001 - the last resort of a CLI: one line, --debug for more
        code, err = 1, e
        if not debug:
            print(f"{prog}: error: {type(e).__name__}: {one_line(e)} (rerun with --debug for the traceback)",
                  file=sys.stderr)  # fmt: skip
            return code
    if debug:
        raise err
    print(f"{prog}: error: {one_line(err)}", file=sys.stderr)
    return code
