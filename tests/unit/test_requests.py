"""Request bodies refuse JSON true/false wherever a number is expected: lax
validation would read them as 1 and 0 (schemathesis found ``"max_uses": true``
accepted as one use)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from skylan.model.requests import (
    CloakRuleCreate,
    NetworkCreate,
    NetworkUpdate,
    NodeUpdate,
    RouteCreate,
    TokenCreate,
)

NET = {"name": "prod", "cidr4": "172.16.1.0/24"}
CASES: list[tuple[type[BaseModel], dict[str, Any], str]] = [
    (NetworkCreate, NET, "mtu"),
    (NetworkCreate, NET, "storm_pps"),
    (NetworkUpdate, {}, "mtu"),
    (NetworkUpdate, {}, "storm_pps"),
    (RouteCreate, {"destination": "10.0.0.0/8", "via_node": "n1"}, "metric"),
    (CloakRuleCreate, {"protocol": "tcp"}, "port_from"),
    (TokenCreate, {}, "max_uses"),
    (TokenCreate, {}, "expires_in_s"),
]


@pytest.mark.parametrize(("model", "base", "field"), CASES)
@pytest.mark.parametrize("flag", [True, False])
def test_a_number_field_refuses_true_and_false(
    model: type[BaseModel], base: dict[str, Any], field: str, flag: bool
) -> None:
    with pytest.raises(ValidationError, match="must be a number, not true/false"):
        model.model_validate({**base, field: flag})


def test_boolean_fields_still_take_booleans() -> None:
    assert NetworkCreate.model_validate({**NET, "encrypted": False}).encrypted is False
    assert TokenCreate.model_validate({"needs_approval": True}).needs_approval is True
    assert NodeUpdate.model_validate({}).name is None
