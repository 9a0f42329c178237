"""The episodic task sampler: seeded task streams with disjoint train and test sets.

The sampler owns all task randomness. It hands each vector-env slot its own :class:`TaskStream`,
which the trial wrapper asks for the next task at every trial start.

Schedules (``schedule``) for the train split:

- ``iid``: every trial draws a fresh task from the distribution;
- ``pool``: a fixed pool of ``pool_size`` tasks is drawn once, each trial picks one uniformly;
- ``recurring``: Ritter et al. (2018)'s bag sampling: each slot draws ``recurring_tasks`` (m) fresh
  tasks, plays each of them ``recurring_repeats`` (r) times in shuffled order (m * r trials, an
  *epoch*), then draws a new bag. With ``new_task_fraction`` p > 0 the schedule is mixed: each
  trial is, with probability p, a fresh task seen once, and otherwise the next trial of the bag.

Every stream reports, for the task it just handed out, how many times this stream had handed it
out before (``last_exposure``: 0 for a new task); the trial wrapper passes it on in ``info`` so
returns can be split into new and recurring tasks.

The test split is a fixed list of ``num_test_tasks`` tasks drawn with ``test_seed`` (independent
of the training seed, so every run and every baseline is scored on the same tasks). Train draws
that collide with a test task are redrawn, so the two sets are disjoint even for discrete task
distributions. Test streams enumerate the test list: slot ``i`` of ``n`` plays tasks
``i, i + n, i + 2n, ...``; under ``recurring`` the test stream fills its bags (and its fresh
tasks) from that same enumeration, so evaluation is deterministic and slots never share tasks.
A slot's enumeration wraps around after ``num_test_tasks / n`` tasks; test exposures count over
the whole stream, so a wrapped task is reported as recurring, never as new (raise
``tasks.num_test_tasks`` when evaluating many trials per slot under ``recurring``).
"""

from __future__ import annotations

from copy import deepcopy
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from memrl.config import ConfigError
from memrl.tasks.protocol import Task, TaskDistribution, task_key, to_json_task

Split = Literal["train", "test"]
SCHEDULES = ("iid", "pool", "recurring")

# Salt mixed into the seed so that train streams never share a generator with the test draw.
_TRAIN_SALT = 0x7A5C
_TEST_STREAM_SALT = 0x7E57  # shuffles test-split bags; the test tasks themselves come from test_seed
_MAX_REDRAWS = 1000


class TaskStream:
    """An endless, seeded source of tasks for one env slot."""

    def __init__(self, sampler: TaskSampler, split: Split, slot: int, num_slots: int) -> None:
        self.sampler, self.split, self.slot, self.num_slots = sampler, split, slot, num_slots
        # Test streams (bag shuffles, fresh-task draws) follow test_seed, not the run's seed, so that every
        # run meets the same test trials.
        seed, split_salt = (sampler.seed, _TRAIN_SALT) if split == "train" else (sampler.test_seed, _TEST_STREAM_SALT)
        self._rng = np.random.default_rng([seed, split_salt, slot])
        self._count = 0  # tasks taken from this slot's enumeration of the test list
        self._bag: list[int] = []  # indices into _bag_tasks, in the order they will be played
        self._bag_tasks: list[Task] = []
        # task key -> trials played: pool tasks; under ``recurring``, every test task (a test slot's
        # enumeration wraps around after len(test_tasks) / num_slots tasks, so a "fresh" test task
        # may be one it played before) and the current epoch's train tasks.
        self._seen: dict[str, int] = {}
        self.last_exposure = 0
        """How many times this stream had handed out its last task before (0: a new task)."""

    def __deepcopy__(self, memo: dict[int, Any]) -> TaskStream:
        """A copy that goes on from where this stream is, sharing its sampler.

        The sampler's task lists are never changed after it is built, so copying them (1000 test
        tasks of 550 numbers each for the tabular MDP) buys nothing; it made building 256 trial envs
        take 95 s, since gymnasium's ``RecordConstructorArgs`` deep-copies each wrapper's arguments.
        """
        copy = type(self).__new__(type(self))
        memo[id(self)] = copy
        for name, value in vars(self).items():  # the sampler: its copy if this deepcopy call made one, else itself
            setattr(copy, name, memo.get(id(value), value) if name == "sampler" else deepcopy(value, memo))
        return copy

    def _fresh(self) -> Task:
        """A task this stream has not played: the next test task of this slot, or a new train draw."""
        if self.split == "test":
            tasks = self.sampler.test_tasks
            task = tasks[(self.slot + self._count * self.num_slots) % len(tasks)]
            self._count += 1
            return task
        return self.sampler.draw_train_task(self._rng)

    def _count_exposure(self, task: Task) -> None:
        key = task_key(task)
        self.last_exposure = self._seen.get(key, 0)
        self._seen[key] = self.last_exposure + 1

    def next(self) -> Task:
        """The task for the next trial of this slot."""
        sampler = self.sampler
        if sampler.schedule == "recurring":
            if sampler.new_task_fraction > 0 and self._rng.random() < sampler.new_task_fraction:
                task = self._fresh()
            else:
                if not self._bag:  # a new epoch: m fresh tasks, each r times, shuffled
                    if self.split == "train":
                        self._seen.clear()  # fresh train draws are new with near certainty: keep the count small
                    self._bag_tasks = [self._fresh() for _ in range(sampler.recurring_tasks)]
                    self._bag = list(np.repeat(np.arange(sampler.recurring_tasks), sampler.recurring_repeats))
                    self._rng.shuffle(self._bag)
                task = self._bag_tasks[int(self._bag.pop())]
            self._count_exposure(task)
            return task
        if self.split == "train" and sampler.schedule == "pool":
            pool = sampler.train_pool
            task = pool[int(self._rng.integers(len(pool)))]
            self._count_exposure(task)
            return task
        self.last_exposure = 0
        return self._fresh()


@dataclass
class TaskSampler:
    """Seeded task source over a task distribution, with disjoint train/test splits."""

    distribution: TaskDistribution
    seed: int = 0
    schedule: str = "iid"
    pool_size: int = 100
    num_test_tasks: int = 1000
    test_seed: int = 12345
    recurring_tasks: int = 10
    recurring_repeats: int = 10
    new_task_fraction: float = 0.0

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown task schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}")
        if self.num_test_tasks < 1 or self.pool_size < 1:
            raise ValueError("num_test_tasks and pool_size must be at least 1")
        if self.recurring_tasks < 1 or self.recurring_repeats < 1:
            raise ValueError("recurring_tasks and recurring_repeats must be at least 1")
        if not 0.0 <= self.new_task_fraction <= 1.0:
            raise ValueError(f"new_task_fraction must be in [0, 1], got {self.new_task_fraction}")
        test_rng = np.random.default_rng(self.test_seed)
        self.test_tasks: list[Task] = [self._checked(t) for t in self._sample(self.num_test_tasks, test_rng)]
        self._test_keys = {task_key(t) for t in self.test_tasks}
        self.train_pool: list[Task] = []
        # Fail now, before anything is written, if no training task lies outside the test split.
        self._checked(self.draw_train_task(np.random.default_rng([self.seed, _TRAIN_SALT, 0xC4EC])))
        if self.schedule == "pool":
            pool_rng = np.random.default_rng([self.seed, _TRAIN_SALT, 0xB00])
            self.train_pool = [self.draw_train_task(pool_rng) for _ in range(self.pool_size)]

    def is_test_task(self, task: Task) -> bool:
        return task_key(task) in self._test_keys

    def draw_train_task(self, rng: np.random.Generator) -> Task:
        """One task from the distribution that is not in the test set."""
        for _ in range(_MAX_REDRAWS):
            task = self._sample(1, rng)[0]
            if task_key(task) not in self._test_keys:
                return task
        raise ConfigError(
            f"could not draw a training task outside the {len(self._test_keys)} distinct test tasks in "
            f"{_MAX_REDRAWS} tries: the task distribution is too small for tasks.num_test_tasks="
            f"{self.num_test_tasks}; lower it so that some tasks are left for training"
        )

    def _sample(self, n: int, rng: np.random.Generator) -> list[Task]:
        """``sample_tasks(n, rng)``, checked to be a list of ``n`` task dicts."""
        tasks = self.distribution.sample_tasks(n, rng)
        if not isinstance(tasks, (list, tuple)) or len(tasks) != n or not all(isinstance(t, dict) for t in tasks):
            got = (
                f"a list of {len(tasks)} (of {', '.join(sorted({type(t).__name__ for t in tasks}))})"
                if isinstance(tasks, (list, tuple))
                else f"a {type(tasks).__name__}"
            )
            raise ConfigError(
                f"{type(self.distribution).__name__}.sample_tasks({n}, rng) returned {got}; it must return a list of "
                f"exactly {n} task dicts (see README, 'Your own task environment')"
            )
        return list(tasks)

    def _checked(self, task: Task) -> Task:
        """``task`` as plain JSON values, or a clear error naming what cannot be saved."""
        try:
            return to_json_task(task)
        except (TypeError, ValueError) as err:
            raise ConfigError(
                f"{type(self.distribution).__name__}.sample_tasks returned a task that cannot be saved as JSON "
                f"({err}); use numbers, strings, lists and dicts (numpy arrays are converted)"
            ) from None

    def stream(self, split: Split, slot: int, num_slots: int) -> TaskStream:
        if split not in ("train", "test"):
            raise ValueError(f"unknown split {split!r}; use 'train' or 'test'")
        return TaskStream(self, split, slot, num_slots)
