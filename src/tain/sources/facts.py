"""Pull-source jobs as monitoring facts: the ``job_failed`` alert rule fires for a job
whose last run failed and resolves when a later run succeeds."""

from __future__ import annotations

from tain.core.alerts import JobFact
from tain.service.site import Site


def source_facts(site: Site) -> list[JobFact]:
    return [JobFact(f"source {job.name}", ok=job.state != "failed",
                    at=job.last_end or job.last_start or 0.0, message=job.last_error or "")
            for job in site.catalog.list_sources() if job.last_start is not None]
