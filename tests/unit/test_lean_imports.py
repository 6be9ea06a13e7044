"""What only some configurations use is loaded only by them: a gateway without OIDC,
PostgreSQL, tracing or an encryption key never imports PyJWT, asyncpg, the OTLP exporter,
the gRPC instrumentation or AES-GCM. Together they are ~30 MB of a worker's memory, and the
performance issue bounds idle RSS at 90 MB (docs/performance.md)."""

from __future__ import annotations

import json
import subprocess
import sys

OPTIONAL = ("jwt", "asyncpg", "opentelemetry.exporter", "opentelemetry.instrumentation",
            "cryptography.hazmat.primitives.ciphers.aead", "aiosqlite")


def test_the_serving_modules_do_not_load_optional_dependencies() -> None:
    code = ("import json, sys; import gateway.cli, gateway.app, gateway.facade.app; "
            f"print(json.dumps([m for m in {list(OPTIONAL)!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert json.loads(out.stdout) == []
