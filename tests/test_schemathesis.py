"""Property-based API testing: `schemathesis run` against a live node, from its own OpenAPI document.

Asserts no 5xx and no response that violates the document (schemas, status codes,
content types), that unauthenticated requests are refused, undeclared methods get
405 and schema-invalid input is rejected. Bounded: few examples per operation and
a fixed seed, well under a minute. The alert stream never ends, so it is left out
(tests/test_rpc_sse.py covers it).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.rpc_helpers import provision, start, stop

pytestmark = pytest.mark.slow

CHECKS = ",".join([
    "not_a_server_error",
    "response_schema_conformance",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "negative_data_rejection",
    "unsupported_method",
    "ignored_auth",
    "missing_required_header",
    "use_after_free",
    "ensure_resource_availability",
])


def test_api_conforms_to_its_openapi_document(tmp_path: Path) -> None:
    p = provision(tmp_path / "node")
    proc = start(p.data.path)
    try:
        url = p.data.rpc_url()
        env = {**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_TELEMETRY": "false"}
        r = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "run", f"{url}/v1/openapi.json",
             "--header", f"Authorization: Bearer {p.data.tokens().write}",
             "--checks", CHECKS, "--max-examples", "10", "--seed", "1", "--workers", "1",
             "--request-timeout", "10", "--exclude-path", "/v1/alerts/stream",
             "--report-dir", str(tmp_path / "report")],
            cwd=tmp_path, capture_output=True, text=True, timeout=240, env=env)
    finally:
        stop(proc)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
    assert " passed" in r.stdout
