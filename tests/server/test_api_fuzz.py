"""Property-based fuzzing of the live API from its own OpenAPI schema (schemathesis + hypothesis):
no request, valid or not, gets a 500, and every answer matches what /openapi.json promises.

schemathesis's pytest plugin (`from_fixture`/`parametrize`) does not run under pytest 9, so each
operation's strategy is drawn with hypothesis's own `@given`.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from live_server import live_server, shipped_model
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES = 50  # per operation and mode; bounded so the whole run takes seconds
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE
RUNS = [("POST", "/v1/page", POSITIVE), ("POST", "/v1/page", NEGATIVE),
        ("POST", "/v1/predict", POSITIVE), ("POST", "/v1/predict", NEGATIVE),
        ("POST", "/v1/predict/batch", POSITIVE), ("POST", "/v1/predict/batch", NEGATIVE),
        ("POST", "/v1/number", POSITIVE), ("POST", "/v1/number", NEGATIVE),
        ("GET", "/v1/model", POSITIVE), ("GET", "/healthz", POSITIVE), ("GET", "/readyz", POSITIVE)]


@pytest.fixture(scope="module")
def api_schema():
    from digitrec.server.app import Settings

    with live_server(Settings(model_file=shipped_model(), device="cpu", threads=1, max_batch=8)) as url:
        yield schemathesis.openapi.from_url(f"{url}/openapi.json")


def test_schema_lists_every_operation(api_schema):
    found = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert found == {(method, path) for method, path, _ in RUNS}


@pytest.mark.parametrize("method, path, mode", RUNS, ids=[f"{m} {p} {g.value}" for m, p, g in RUNS])
def test_no_server_errors(api_schema, method, path, mode):
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
    def fuzz(case):
        case.call_and_validate(checks=CHECKS, timeout=30)

    fuzz()

