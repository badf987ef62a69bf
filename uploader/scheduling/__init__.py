"""``capi-uploader schedule``: a long-running process that runs the upload on a timer."""

from uploader.scheduling.scheduler import JOB_ID, RunCounter, build_scheduler, run_scheduler, scheduled_run

__all__ = ["JOB_ID", "RunCounter", "build_scheduler", "run_scheduler", "scheduled_run"]
