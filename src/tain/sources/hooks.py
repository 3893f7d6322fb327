"""Commands run after a job's run: ``on_success`` / ``on_failure`` from tain.toml.

Hooks come only from the site's config file (the operator already has a shell there);
the admin API refuses them, so an API token never turns into shell access. Each runs
under ``/bin/sh -c`` with the run's facts in the environment; its output goes to the
run's log and its failure is logged, never changing the run's outcome.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable

from tain.catalog.sources import RunOutcome
from tain.core.sourcespec import SourceSpec

MAX_HOOK_OUTPUT = 20_000


def hook_env(spec: SourceSpec, outcome: RunOutcome) -> dict[str, str]:
    return {
        "TAIN_SOURCE_NAME": spec.name, "TAIN_SOURCE_REPO": spec.repo,
        "TAIN_SOURCE_STATE": outcome.state,
        "TAIN_SOURCE_REVISION": "" if outcome.revision is None else str(outcome.revision),
        "TAIN_SOURCE_ERROR": outcome.error or "",
        "TAIN_SOURCE_FILES": str(outcome.files), "TAIN_SOURCE_BYTES": str(outcome.bytes),
    }


def run_hook(spec: SourceSpec, outcome: RunOutcome, log: Callable[[str], None]) -> None:
    command = spec.on_success if outcome.state == "success" else spec.on_failure
    if not command:
        return
    log(f"hook: {command}")
    try:
        done = subprocess.run(
            ["/bin/sh", "-c", command], env={**os.environ, **hook_env(spec, outcome)},
            capture_output=True, text=True, errors="replace", timeout=spec.timeout_seconds,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log(f"hook failed: {exc}")
        return
    output = (done.stdout + done.stderr).strip()
    if output:
        log(output[-MAX_HOOK_OUTPUT:])
    log(f"hook exited with code {done.returncode}")
