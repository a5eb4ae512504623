"""Property-based fuzzing of every endpoint from the OpenAPI document
(schemathesis), valid and invalid input alike. Whatever is sent, the running
controller never answers with a 5xx, and every answer conforms to the document:
a declared status code, content type and headers, a body that validates
against the declared schema (error bodies included), invalid input refused,
and a 405 with ``Allow`` for a method the path does not have.

The controller is a real `skylan controller serve` process; requests carry an
admin token so they reach the handlers rather than stopping at
authentication, and a network and a node exist so generated names can hit
real rows.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from schemathesis.generation import GenerationMode

from .served import Served, serve

ADMIN = "skyadm_schema-fuzz-admin-token-0123456789"
EXAMPLES = 20
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
    checks.unsupported_method,
    checks.missing_required_header,
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    # an admin token on an agent endpoint is a wrong node credential: thousands of
    # those would lock the fuzzer out, which is the point of the lockout, not the test's
    s = serve(tmp_path_factory.mktemp("fuzzctl"), ADMIN, extra=["--auth-failure-burst", "1000000"])
    headers = {"Authorization": f"Bearer {ADMIN}"}
    with httpx.Client(base_url=s.url, verify=False, headers=headers) as http:
        http.post("/api/v1/networks", json={"name": "prod", "cidr4": "172.16.1.0/24"})
    try:
        yield s
    finally:
        s.stop()


def _operations(spec: dict[str, Any]) -> list[Any]:
    schema = schemathesis.openapi.from_dict(spec)
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_answer_conforms_to_the_openapi_document(
    served: Served, mode: GenerationMode, tmp_path: Path
) -> None:
    spec = httpx.get(f"{served.url}/api/v1/openapi.json", verify=False).json()
    session = requests.Session()
    session.verify = False
    headers = {"Authorization": f"Bearer {ADMIN}"}
    failures: list[str] = []
    statuses: list[int] = []
    operations = [op for op in _operations(spec) if op.path != "/api/v1/agent/netmap"]
    assert len(operations) > 30
    for op in operations:

        @given(case=op.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # unverified HTTPS to our own controller
                response = case.call(
                    base_url=served.url, session=session, headers=headers, timeout=30, verify=False
                )
            statuses.append(response.status_code)
            try:
                case.validate_response(response, checks=CHECKS, headers=headers)
            except BaseException as exc:  # schemathesis reports a group of failures
                failures.append(
                    f"{case.method} {case.formatted_path} -> {response.status_code}: "
                    + " | ".join(str(exc).split("\n")[:12])[:600]
                )

        try:
            check()
        except Exception as exc:  # an unsatisfiable strategy is not a server error
            if "Unsatisfiable" not in type(exc).__name__:
                raise
    assert not failures, "\n".join(failures[:20])
    assert len(statuses) >= 2 * len(operations)  # it really sent requests
    assert any(400 <= s < 500 for s in statuses)  # and some were refused, as JSON 4xx
