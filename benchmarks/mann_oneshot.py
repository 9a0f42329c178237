"""Synthetic one-shot association (Santoro et al. 2016, section 4, with random vectors for images).

Each episode draws 5 fresh random class vectors (unit Gaussian, ``--dim`` dimensions) and a random
assignment of the 5 labels to them, then presents ``--presentations`` noisy samples of every class
in shuffled order. The input at step t is ``[x_t, onehot(label_{t-1})]``: the label of step t is
shown at step t+1, so the only way to classify the second sample of a class is to have bound the
first sample to its label, which arrived one step later. Both models (MANN: LSTM controller of 128,
memory 32 x 32, 4 read heads, usage decay 0.95; LSTM of similar parameter count) are trained (no RL)
for the same number of episodes (batches of 16, Adam lr 1e-2, gradient-norm clipping) to predict
the label at every step. We report accuracy at the 1st, 2nd, 3rd, 5th and 10th presentation of a
class on fresh episodes; chance is 20%. Santoro et al. (Omniglot): MANN 82.8% vs LSTM 49.5% at the
2nd presentation. With ``--min-classes M``, each training batch has between M and ``--classes``
classes per episode (labels drawn from all ``--classes``), both models alike; the test always uses
``--classes``. ``--noise-start``/``--noise-ramp`` raise the training noise gradually and ``--lr-decay``
decays the learning rate linearly to 0, both models alike.

    python benchmarks/mann_oneshot.py             # MANN and LSTM; last line: mann_2nd: X, lstm_2nd: Y

With 15 classes (90 steps an episode) the MANN needs a memory that holds the episode: each step
fills R slots (one per read head), so N slots keep the last N / R steps. Santoro et al.'s 128 x 40
with 2 read heads keeps 64 (docs/results.md, "One-shot association"):

    python benchmarks/mann_oneshot.py --classes 15 --presentations 6 --lr 3e-3 --addressing-init sharp \
        --slots 128 --width 40 --read-heads 2
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

from memrl.algos.optim import clipped_step
from memrl.memory import LSTMCore, MANNCore
from memrl.memory.base import MemoryCore


def episodes(
    batch: int,
    *,
    classes: int,
    presentations: int,
    dim: int,
    noise: float,
    generator: torch.Generator,
    labels: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inputs ``(T, B, dim + labels)``, labels ``(T, B)`` and presentation index ``(T, B)`` (1-based).

    The ``classes`` classes of an episode get distinct labels drawn from ``labels`` (default: ``classes``).
    """
    labels = labels or classes
    steps = classes * presentations
    prototypes = torch.randn(batch, classes, dim, generator=generator)  # fresh classes every episode
    shuffled = torch.argsort(torch.rand(batch, labels, generator=generator), dim=1)
    labels_of_class = shuffled[:, :classes]  # distinct random labels
    order = torch.argsort(torch.rand(batch, steps, generator=generator), dim=1) % classes  # (B, T) class ids
    samples = torch.gather(prototypes, 1, order.unsqueeze(-1).expand(batch, steps, dim))  # (B, T, dim)
    samples = samples + noise * torch.randn(batch, steps, dim, generator=generator)
    targets = torch.gather(labels_of_class, 1, order)  # (B, T)
    seen = F.one_hot(order, classes).cumsum(dim=1)  # (B, T, classes): presentations so far, inclusive
    presentation = torch.gather(seen, 2, order.unsqueeze(-1)).squeeze(-1)  # (B, T)
    previous = torch.zeros(batch, steps, labels)
    previous[:, 1:] = F.one_hot(targets[:, :-1], labels).float()  # label of step t-1, shown at step t
    inputs = torch.cat([samples, previous], dim=-1).transpose(0, 1)  # (B, T, D) -> (T, B, D)
    return inputs, targets.t(), presentation.t()


class Classifier(nn.Module):
    def __init__(self, core: MemoryCore, classes: int) -> None:
        super().__init__()
        self.core, self.readout = core, nn.Linear(core.output_size, classes)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        T, B = inputs.shape[:2]
        starts = torch.zeros(T, B, dtype=torch.bool)
        starts[0] = True
        y, _ = self.core(inputs, self.core.initial_state(B), starts)
        return self.readout(y)  # (T, B, classes)


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def training_noise(args: argparse.Namespace, iteration: int) -> float:
    """The noise std of training batch ``iteration`` (1-based): ``--noise-start`` rising linearly to
    ``--noise`` over the first ``--noise-ramp`` batches, then ``--noise``."""
    if args.noise_start is None:  # main() checks that --noise-start comes with a positive --noise-ramp
        return args.noise
    return args.noise_start + (args.noise - args.noise_start) * min(1.0, (iteration - 1) / args.noise_ramp)


def run(model: Classifier, label: str, args: argparse.Namespace) -> dict[int, float]:
    generator = torch.Generator().manual_seed(args.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    # --lr-decay: batch k (0-based) runs at lr * (1 - k / iterations), linearly towards 0
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda done: 1.0 - done / args.iterations if args.lr_decay else 1.0
    )
    task = dict(presentations=args.presentations, dim=args.dim, labels=args.classes)
    started = time.perf_counter()
    iteration = skipped = 0
    while iteration < args.iterations and time.perf_counter() - started < args.time_limit:
        iteration += 1
        classes = int(torch.randint(args.min_classes or args.classes, args.classes + 1, (), generator=generator))
        noise = training_noise(args, iteration)
        inputs, labels, _ = episodes(args.batch, classes=classes, noise=noise, generator=generator, **task)
        logits = model(inputs)
        loss = F.cross_entropy(logits.reshape(-1, args.classes), labels.reshape(-1))  # (T*B, C)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        skipped += not clipped_step(optimizer, model.parameters(), 10.0)  # an overflowed gradient is left out
        schedule.step()
        if iteration % 200 == 0:
            print(
                f"[{label}] iter {iteration:5d} noise {noise:.2f} loss {loss.item():.3f} "
                f"{time.perf_counter() - started:.0f}s",
                flush=True,
            )
    seconds = time.perf_counter() - started
    test_generator = torch.Generator().manual_seed(args.seed + 1)
    correct = torch.zeros(args.presentations + 1)
    count = torch.zeros(args.presentations + 1)
    with torch.no_grad():
        for _ in range(10):  # 10 x 100 fresh test episodes
            inputs, labels, presentation = episodes(
                100, classes=args.classes, noise=args.noise, generator=test_generator, **task
            )
            hits = (model(inputs).argmax(-1) == labels).float()
            correct.index_add_(0, presentation.reshape(-1), hits.reshape(-1))
            count.index_add_(0, presentation.reshape(-1), torch.ones(hits.numel()))
    accuracy = {n: float(correct[n] / count[n]) for n in range(1, args.presentations + 1)}
    shown = ", ".join(f"{n}: {accuracy[n]:.1%}" for n in (1, 2, 3, 5, 10) if n in accuracy)
    print(
        f"{label}: {parameter_count(model)} parameters, {iteration} episodes x {args.batch} in {seconds:.0f}s "
        f"({skipped} steps left out: gradient not finite); "
        f"accuracy by presentation {shown}"
    )
    return accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument(
        "--min-classes",
        type=int,
        default=None,
        help="train on episodes of min-classes to classes classes (drawn per batch; labels from all of them); "
        "the test always uses --classes",
    )
    parser.add_argument("--presentations", type=int, default=10)
    parser.add_argument("--dim", type=int, default=20)
    parser.add_argument("--noise", type=float, default=0.3, help="std of the per-sample Gaussian noise")
    parser.add_argument(
        "--noise-start",
        type=float,
        default=None,
        help="train with this noise std at first, rising linearly to --noise over --noise-ramp batches "
        "(both models alike); the test always uses --noise",
    )
    parser.add_argument("--noise-ramp", type=int, default=0, help="batches over which the noise rises")
    parser.add_argument("--iterations", type=int, default=8000)
    parser.add_argument("--time-limit", type=float, default=900.0, help="seconds of training per model, at most")
    parser.add_argument(
        "--lr-decay", action="store_true", help="decay the learning rate linearly to 0 over --iterations (both models)"
    )
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--controller", type=int, default=128)
    parser.add_argument("--slots", type=int, default=32)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--read-heads", type=int, default=4)
    parser.add_argument(
        "--addressing-init",
        choices=["neutral", "sharp"],
        default="neutral",
        help="MANN head biases at the start (policy.memory.addressing_init)",
    )
    parser.add_argument("--models", nargs="+", choices=["lstm", "mann"], default=["lstm", "mann"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.min_classes is not None and not 1 <= args.min_classes <= args.classes:
        parser.error(f"--min-classes must be between 1 and --classes ({args.classes}); got {args.min_classes}")
    if args.noise_ramp < 0 or (args.noise_start is not None) != (args.noise_ramp > 0):
        parser.error("--noise-start and --noise-ramp (a positive number of batches) go together")
    torch.set_num_threads(1)
    inputs = args.dim + args.classes
    torch.manual_seed(args.seed)
    mann = Classifier(
        MANNCore(
            input_size=inputs,
            hidden_size=args.controller,
            slots=args.slots,
            width=args.width,
            read_heads=args.read_heads,
            usage_decay=0.95,
            addressing_init=args.addressing_init,
        ),
        args.classes,
    )
    target = parameter_count(mann)  # LSTM of similar size: 4H(I + H + 2) + (H + 1) C
    hidden = next(h for h in range(8, 2048) if 4 * h * (inputs + h + 2) + (h + 1) * args.classes >= target)
    torch.manual_seed(args.seed)
    lstm = Classifier(LSTMCore(input_size=inputs, hidden_size=hidden), args.classes)
    accuracy = {}
    if "lstm" in args.models:
        accuracy["lstm"] = run(lstm, f"LSTM({hidden})", args)
    if "mann" in args.models:
        accuracy["mann"] = run(mann, "MANN", args)
    print(", ".join(f"{name}_2nd: {accuracy[name][2]:.4f}" for name in ("mann", "lstm") if name in accuracy))


if __name__ == "__main__":
    main()
