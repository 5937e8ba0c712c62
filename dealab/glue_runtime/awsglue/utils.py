"""`getResolvedOptions`, as in AWS Glue: the values of `--NAME value` job arguments."""

from __future__ import annotations


class GlueArgumentError(Exception):
    pass


def getResolvedOptions(args: list[str], options: list[str]) -> dict[str, str]:
    given: dict[str, str] = {}
    position = 1
    while position < len(args):
        token = args[position]
        if token.startswith("--"):
            name, equals, value = token[2:].partition("=")
            if not equals:
                has_value = position + 1 < len(args) and not args[position + 1].startswith("--")
                value = args[position + 1] if has_value else ""
                position += 1 if has_value else 0
            given[name] = value
        position += 1
    missing = [option for option in options if option not in given]
    if missing:
        raise GlueArgumentError(f"the following arguments are required: {', '.join('--' + name for name in missing)}")
    return {option: given[option] for option in options}
