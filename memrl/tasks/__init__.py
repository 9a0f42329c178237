"""Task distributions, the episodic task sampler and the trial wrapper."""

from memrl.tasks.protocol import Task, TaskDistribution, TaskSettable, check_task_env, task_id, task_key
from memrl.tasks.sampler import SCHEDULES, TaskSampler, TaskStream
from memrl.tasks.trial import TrialWrapper

__all__ = [
    "SCHEDULES",
    "Task",
    "TaskDistribution",
    "TaskSampler",
    "TaskSettable",
    "TaskStream",
    "TrialWrapper",
    "check_task_env",
    "task_id",
    "task_key",
]
