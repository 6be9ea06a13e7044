"""The facade is a client of the core: importing it (as ``gateway serve --only http`` does)
loads none of the core's packages, so it runs in its own process with only the generated
stubs, its translators and its error mapping. Type-only imports under ``TYPE_CHECKING`` are
allowed and not loaded."""

from __future__ import annotations

import json
import subprocess
import sys

CORE = ("gateway.service", "gateway.tenancy", "gateway.routing", "gateway.resilience",
        "gateway.providers")


def test_importing_the_facade_loads_nothing_of_the_core() -> None:
    code = ("import json, sys; import gateway.facade, gateway.facade.app; "
            f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({CORE!r}))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert json.loads(out.stdout) == []
