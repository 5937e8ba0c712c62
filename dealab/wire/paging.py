"""One page of a listing, as the List* and Get* operations an engine answers itself page through their items.

The token is the position of the page's first item in the listing, which the engine keeps in a stable order, so
following the tokens visits every item once. Services differ only in their members' names (NextToken or
nextToken, MaxResults or maxResults), their default and largest page sizes, and the error a bad token earns: the
caller names them all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence


def page(member: str, items: Sequence, params: dict, *, default: int, most: int | None = None,
         invalid_token: Callable[[str], Exception], token_member: str = "NextToken",
         limit_member: str = "MaxResults") -> dict:
    """`{member: the page's items}`, with `{token_member: the next page's token}` while items remain. A limit of
    0 or none gives `default` items, one above `most` gives `most`; a token this listing did not hand out raises
    `invalid_token(token)`."""
    token = params.get(token_member)
    start = _position(token) if token else 0
    if start is None:
        raise invalid_token(str(token))
    size = int(params.get(limit_member) or 0) or default
    if most is not None:
        size = min(size, most)
    answer = {member: items[start:start + size]}
    if start + size < len(items):
        answer[token_member] = str(start + size)
    return answer


def _position(token) -> int | None:
    text = str(token)
    return int(text) if text.isascii() and text.isdigit() else None
