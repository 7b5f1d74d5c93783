"""`GxValidator`: how the GX suites run inside Dagster, and the fork server warmed up as a run starts."""

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field

from orchestration.quality.launcher import DEFAULT_TIMEOUT_SECONDS, prewarm


class GxValidator(ConfigurableResource):
    """Runs the GX suites in short-lived child processes (see `orchestration.quality.launcher`)."""

    raw_new_loads_only: bool = Field(
        default=True,
        description=(
            "Raw-stage expectations read only the raw rows loaded since each one last passed (raw rows "
            "never change once loaded). False: every raw row, every run."
        ),
    )
    build_docs: bool = Field(default=True, description="Rebuild the GX Data Docs after each stage.")
    timeout_seconds: float = Field(
        default=DEFAULT_TIMEOUT_SECONDS, description="A stage that runs longer fails all its expectations."
    )

    def setup_for_execution(self, context: InitResourceContext) -> None:
        # Resources are set up when a run starts, long before the first check: GX is imported meanwhile.
        prewarm()
