"""A task's data as the export drift check's reference (calibration from the training
split, drift and the task metric on the test split). Lives in train: export never imports
train, so the CLI and bench hand export these arrays."""

from __future__ import annotations


def task_reference(name: str, **opts):
    from ..export.drift import from_task
    from .tasks import load_task

    return from_task(load_task(name, **opts), name)
