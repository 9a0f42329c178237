"""Hand-designed baselines of Duan et al. 2016 (RL², Tables 1 and 2), evaluated like trained agents.

- :mod:`memrl.baselines.bandit`: random, Gittins index, Thompson sampling, optimistic Thompson
  sampling, UCB1, epsilon-greedy, greedy and the Bayes-optimal policy on the Bernoulli bandit;
- :mod:`memrl.baselines.gittins`: exact finite-horizon Gittins indices by calibration DP;
- :mod:`memrl.baselines.bayes_optimal`: exact Bayes-optimal DP over exchangeable Beta posteriors;
- :mod:`memrl.baselines.mdp`: random, PSRL, BEB, UCRL2, epsilon-greedy and greedy on the tabular MDP;
- :mod:`memrl.baselines.protocol`: tuning on training tasks, evaluation on the test tasks that
  ``memrl eval`` uses, JSON and PNG reports (``memrl baselines``).
"""

from memrl.baselines.bandit import BANDIT_AGENTS, BanditAgent, play_bandit
from memrl.baselines.bayes_optimal import bayes_optimal_tables
from memrl.baselines.gittins import gittins_index_table
from memrl.baselines.mdp import MDP_AGENTS, MDPAgent, play_mdp
from memrl.baselines.protocol import (
    BASELINE_AGENTS,
    BaselineResult,
    Setting,
    evaluate_baselines,
    make_agent,
    tune,
    write_baselines_report,
)

__all__ = [
    "BANDIT_AGENTS",
    "BASELINE_AGENTS",
    "MDP_AGENTS",
    "BanditAgent",
    "BaselineResult",
    "MDPAgent",
    "Setting",
    "bayes_optimal_tables",
    "evaluate_baselines",
    "gittins_index_table",
    "make_agent",
    "play_bandit",
    "play_mdp",
    "tune",
    "write_baselines_report",
]
