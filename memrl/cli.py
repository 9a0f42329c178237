"""The ``memrl`` command line: ``train``, ``eval``, ``baselines`` and ``envs``.

    memrl train CONFIG [--set section.key=value ...] [--run-dir DIR]
    memrl train --resume DIR [--set train.total_steps=N ...]
    memrl eval RUN_DIR [--trials N] [--split train|test]
    memrl baselines ENV_ID [--agents a,b,...] [--trials N] [--out DIR] [--set env.kwargs.n_arms=10 ...]
    memrl envs

Every user error (bad config, unknown env, missing run) is reported in one line naming the
problem and what to do, with exit status 2; nothing is written before the config is valid.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from memrl.checkpoint import CheckpointError
from memrl.config import MAX_SEED, ConfigError, apply_overrides, config_from_dict, load_config
from memrl.tasks.protocol import TaskEnvError


def _train(args: argparse.Namespace) -> int:
    from memrl.train import RESUMABLE, config_changes, read_run_config, train

    if args.resume:
        run_dir = Path(args.resume)
        if args.run_dir and Path(args.run_dir).resolve() != run_dir.resolve():
            raise ConfigError(f"--resume {args.resume} continues the run in place; leave out --run-dir {args.run_dir}")
        saved = read_run_config(run_dir)
        if args.config:
            print(f"note: resuming {run_dir} with its own {run_dir / 'config.yaml'}; {args.config} is not read")
        cfg = config_from_dict(apply_overrides(saved.to_dict(), args.set))
        fixed = [
            f"{key} ({before!r} -> {after!r})"
            for key, before, after in config_changes(saved.to_dict(), cfg.to_dict())
            if not key.startswith(RESUMABLE)
        ]
        if fixed:
            raise ConfigError(
                f"--resume continues the trained model, so only train.total_steps, train.checkpoint_every, "
                f"train.progress_bar, train.torch_threads, train.device and eval.* can change; not {', '.join(fixed)}. "
                "Start a new run (another --run-dir) for other settings"
            )
        train(cfg, run_dir, resume=True, log_stdout=args.verbose)
        return 0
    if not args.config:
        raise ConfigError("memrl train needs a CONFIG file (e.g. configs/rl2_bandit.yaml) or --resume RUN_DIR")
    cfg = load_config(args.config, args.set)
    run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    train(cfg, run_dir, log_stdout=args.verbose)
    return 0


def _eval(args: argparse.Namespace) -> int:
    from stable_baselines3.common.logger import Image

    from memrl.evaluation import MEMORY_VIEWS, evaluate, record_memory_views, upscale_view, write_report
    from memrl.logging import make_logger
    from memrl.tasks.vec import make_sampler, make_vec_env
    from memrl.train import check_directory, load_model, read_run_config

    run_dir = Path(args.run_dir)
    cfg = read_run_config(run_dir)
    trials = cfg.eval.trials if args.trials is None else args.trials
    split = args.split or cfg.eval.split
    out_dir = Path(args.out) if args.out else run_dir
    check_directory(out_dir, "--out")
    sampler = make_sampler(cfg.env, cfg.tasks, cfg.train.seed)
    model = load_model(run_dir, cfg)
    probe = make_vec_env(cfg.env, sampler, split=split, num_envs=1)
    try:
        model.check_spaces(probe)  # a config.yaml edited after training
    except ConfigError as err:
        raise ConfigError(f"{run_dir / 'config.yaml'}: its env spaces do not match its checkpoint's: {err}") from None
    finally:
        probe.close()
    started = time.perf_counter()
    result = evaluate(
        model,
        cfg,
        sampler,
        split=split,
        trials=trials,
        num_envs=cfg.eval.num_envs,
        deterministic=args.deterministic or cfg.eval.deterministic,
        seed=args.seed,
    )
    json_path, png_path = write_report(result, out_dir)
    logger = make_logger(run_dir)
    logger.record(f"eval/{split}_trial_return", result.mean_return)
    for index, value in enumerate(result.per_episode_mean):
        logger.record(f"eval/{split}_return_episode_{index:0{len(str(len(result.per_episode_mean) - 1))}d}", value)
    # Memory views (NTM, MANN): slot x time heat maps of one trial; no-op for GRU/LSTM cores.
    deterministic = args.deterministic or cfg.eval.deterministic
    views = record_memory_views(model, cfg, sampler, split=split, deterministic=deterministic, seed=args.seed)
    for name, view in views.items():
        logger.record(
            f"{MEMORY_VIEWS}/{name}", Image(upscale_view(view), "HW"), exclude=("stdout", "log", "json", "csv")
        )
    logger.dump(step=model.num_timesteps)
    logger.close()
    print(
        f"{split} split, {result.trials} trials: mean trial return {result.mean_return:.3f} "
        f"± {result.stderr:.3f} (stderr), 95% CI [{result.ci95[0]:.3f}, {result.ci95[1]:.3f}] "
        f"({time.perf_counter() - started:.0f}s)"
    )
    for row in result.by_exposure:  # schedules where tasks recur
        print(
            f"  exposure {row['exposure']} ({row['trials']} trials): first episode {row['first_episode_mean']:.3f} "
            f"± {row['first_episode_stderr']:.3f}, trial {row['trial_mean']:.3f} ± {row['trial_stderr']:.3f}"
        )
    print(f"wrote {json_path} and {png_path}")
    return 0


def _baselines(args: argparse.Namespace) -> int:
    from memrl.baselines.protocol import evaluate_baselines, write_baselines_report
    from memrl.train import check_directory

    if any(item.split("=", 1)[0].strip() == "env.id" for item in args.set):
        raise ConfigError(f"memrl baselines takes the env as its argument ({args.env_id}); leave out --set env.id=...")
    cfg = config_from_dict(apply_overrides({"env": {"id": args.env_id}}, args.set))
    agents = None
    if args.agents is not None:
        agents = [name.strip() for name in args.agents.split(",") if name.strip()]
        if not agents:
            raise ConfigError("--agents needs a comma-separated list of baseline names, e.g. --agents gittins,ucb1")
        twice = sorted({name for name in agents if agents.count(name) > 1})
        if twice:
            raise ConfigError(f"--agents names {', '.join(twice)} more than once; name each baseline once")
    slug = cfg.env.id.replace("/", "_")
    out_dir = Path(args.out) if args.out else Path("runs") / f"baselines-{slug}-{time.strftime('%Y%m%d-%H%M%S')}"
    check_directory(out_dir, "--out")
    started = time.perf_counter()
    results = evaluate_baselines(
        cfg.env, cfg.tasks, agents, trials=args.trials, seed=args.seed, tune_trials=args.tune_trials, log=print
    )
    json_path, png_path = write_baselines_report(results, out_dir, env_cfg=cfg.env, task_cfg=cfg.tasks, seed=args.seed)
    print(f"wrote {json_path} and {png_path} ({time.perf_counter() - started:.0f}s)")
    return 0


def _envs(args: argparse.Namespace) -> int:
    import gymnasium as gym

    import memrl.envs  # noqa: F401

    for env_id, spec in sorted(gym.envs.registration.registry.items()):
        if env_id.startswith("memrl/"):
            print(f"{env_id:24s} {spec.entry_point}")
    return 0


def _seed(text: str) -> int:
    value = int(text) if text.lstrip("-").isdigit() else -1
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"a seed is an integer in [0, 2**32 - 1], got {text!r}")
    return value


def _positive(text: str) -> int:
    value = int(text) if text.lstrip("-").isdigit() else 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="memrl", description="Meta-RL with memory: train, evaluate, run baselines, list task envs."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="meta-train an agent from a YAML config")
    train.add_argument("config", nargs="?", help="YAML config, e.g. configs/rl2_bandit.yaml")
    train.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a config value (repeatable), e.g. --set train.total_steps=20000",
    )
    train.add_argument("--run-dir", help="run directory (default: runs/NAME-TIMESTAMP)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its checkpoint")
    train.add_argument("--verbose", action="store_true", help="also print training statistics to stdout")
    train.set_defaults(func=_train)

    ev = sub.add_parser("eval", help="evaluate a trained run on held-out tasks; writes eval.json and eval.png")
    ev.add_argument("run_dir", help="run directory written by memrl train")
    ev.add_argument("--trials", type=int, help="number of trials, one task each (default: eval.trials)")
    ev.add_argument("--split", choices=["train", "test"], help="task split (default: eval.split)")
    ev.add_argument("--deterministic", action="store_true", help="greedy actions")
    ev.add_argument("--seed", type=_seed, default=0, help="seed of the evaluation envs and action sampling")
    ev.add_argument(
        "--out", help="write eval.json and eval.png here instead of RUN_DIR (TensorBoard scalars still go to RUN_DIR)"
    )
    ev.set_defaults(func=_eval)

    base = sub.add_parser(
        "baselines",
        help="evaluate hand-designed baselines (Duan et al. 2016) on the test tasks; writes baselines.json and .png",
    )
    base.add_argument("env_id", help="memrl/Bandit-v0 or memrl/TabularMDP-v0")
    base.add_argument("--agents", help="comma-separated baselines (default: every one tractable in this setting)")
    base.add_argument(
        "--trials", type=_positive, default=1000, help="number of test trials, one task each (default 1000)"
    )
    base.add_argument("--out", help="write baselines.json and baselines.png here (default: runs/baselines-ENV-TIME)")
    base.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="config override (repeatable), e.g. --set env.kwargs.n_arms=10 --set env.episodes_per_trial=100",
    )
    base.add_argument("--seed", type=_seed, default=0, help="seed of the reward draws and of the tuning tasks")
    base.add_argument("--tune-trials", type=_positive, help="training tasks each tuned constant is chosen on")
    base.set_defaults(func=_baselines)

    envs = sub.add_parser("envs", help="list memrl's registered task environments")
    envs.set_defaults(func=_envs)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if "" not in sys.path and os.getcwd() not in sys.path:  # as `python -m`: `env.id=mymodule:Env-v0` finds
        sys.path.insert(0, os.getcwd())  # a mymodule.py in the working directory
    try:
        return int(args.func(args))
    except (ConfigError, CheckpointError, TaskEnvError) as err:
        print(f"memrl {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a directory that cannot be made or written, a full disk
        print(f"memrl {args.command}: error: {err}; check the path and its permissions", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"memrl {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
