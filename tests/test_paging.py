"""The floor's paging (dealab/wire/paging.py), which every engine's own listings share."""

import pytest

from dealab.wire.paging import page


class BadToken(Exception):
    pass


def _page(params: dict, **options) -> dict:
    options = {"default": 3, "invalid_token": lambda token: BadToken(token)} | options
    return page("Items", list(range(7)), params, **options)


def test_following_the_tokens_visits_every_item_once():
    seen, params = [], {}
    while True:
        answer = _page(params)
        seen += answer["Items"]
        if "NextToken" not in answer:
            break
        params = {"NextToken": answer["NextToken"]}
    assert seen == list(range(7))


def test_the_limit_its_default_and_its_ceiling():
    assert _page({"MaxResults": 5}) == {"Items": [0, 1, 2, 3, 4], "NextToken": "5"}
    assert _page({"MaxResults": 0}) == {"Items": [0, 1, 2], "NextToken": "3"}
    assert _page({"MaxResults": 50}, most=4) == {"Items": [0, 1, 2, 3], "NextToken": "4"}
    assert _page({"MaxResults": 7}) == {"Items": list(range(7))}


def test_the_services_member_names():
    answer = _page({"nextToken": "6", "maxResults": 1}, token_member="nextToken", limit_member="maxResults")
    assert answer == {"Items": [6]}


@pytest.mark.parametrize("token", ["abc", "-1", "1.5", "²"])
def test_a_token_the_listing_did_not_hand_out_is_the_callers_error(token):
    with pytest.raises(BadToken) as raised:
        _page({"NextToken": token})
    assert str(raised.value) == token
