"""Names are checked whole: no trailing newline, nothing past the rule."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skylan.model.jointoken import JoinToken, JoinTokenFormatError
from skylan.model.names import Kind, identifier


@pytest.mark.parametrize("kind", list(Kind))
@pytest.mark.parametrize("bad", ["a1\n", "a1\r\n", "a1 ", "", "x" * 65, "a\x00", "a/b", "é"])
def test_bad_names_are_refused(kind: Kind, bad: str) -> None:
    with pytest.raises(ValueError, match="1-64"):
        identifier(bad, kind)


@given(st.text(max_size=70))
def test_a_name_is_accepted_exactly_when_the_whole_of_it_fits_the_rule(value: str) -> None:
    whole = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
    try:
        identifier(value)
        accepted = True
    except ValueError:
        accepted = False
    assert accepted == bool(whole.search(value))


def test_join_tokens_are_matched_whole() -> None:
    good = str(JoinToken.new("ab" * 32))
    assert JoinToken.parse(good + "\n").secret  # surrounding blanks are the copy's, not the token's
    for bad in (good + "x!", good.replace("sky1", "sky1x"), good + "\nmore"):
        with pytest.raises(JoinTokenFormatError):
            JoinToken.parse(bad)
