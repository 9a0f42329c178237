"""The NTM copy task (Graves et al. 2014, section 4.1): NTM core vs an LSTM of similar size.

Each sequence is L random 8-bit vectors (L uniform in 1..20 in training), then one step with the
delimiter channel on, then L steps of no input during which the model must output the L vectors.
The loss is the binary cross-entropy of the recalled bits, reported in bits per sequence. Both
models are trained directly (no RL): the NTM for ``--iterations`` batches of 16, the LSTM for as long
as the NTM took (its iterations are far cheaper, so it sees many more sequences), both with Adam
(lr 3e-3) and gradient-norm clipping, with a curriculum on the maximum length (4, 8, ..., 20, each
step taken once the running loss is below 0.05 bits per step); then they are evaluated on lengths
1-20 and on length-40 sequences, which neither saw in training. The NTM (controller LSTM of 100,
memory 128 x 20 starting as a small constant, one read and one write head, shifts -1..1) is Graves et
al.'s copy setup. Last line::

    bits_per_seq: X, len40_bit_error: Y

(the NTM's figures; the LSTM's are printed on the line above).

    python benchmarks/ntm_copy.py                 # NTM and LSTM, default budget
    python benchmarks/ntm_copy.py --skip-lstm     # NTM only
"""

from __future__ import annotations

import argparse
import math
import time

import torch
import torch.nn.functional as F
from torch import nn

from memrl.algos.optim import clipped_step
from memrl.memory import LSTMCore, NTMCore
from memrl.memory.base import MemoryCore


def copy_batch(batch: int, length: int, bits: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs ``(2L + 1, B, bits + 1)`` and targets ``(L, B, bits)`` of the copy task.

    Channel ``bits`` is the delimiter; the recall phase (the last L steps) has no input at all.
    """
    data = torch.randint(0, 2, (length, batch, bits), generator=generator).float()
    inputs = torch.zeros(2 * length + 1, batch, bits + 1)
    inputs[:length, :, :bits] = data
    inputs[length, :, bits] = 1.0
    return inputs, data


class CopyModel(nn.Module):
    """A memory core with a linear read-out of ``bits`` logits."""

    def __init__(self, core: MemoryCore, bits: int) -> None:
        super().__init__()
        self.core, self.readout = core, nn.Linear(core.output_size, bits)

    def forward(self, inputs: torch.Tensor, length: int) -> torch.Tensor:
        """Logits of the recall phase ``(L, B, bits)``."""
        T, B = inputs.shape[:2]
        starts = torch.zeros(T, B, dtype=torch.bool)
        starts[0] = True
        y, _ = self.core(inputs, self.core.initial_state(B), starts)
        return self.readout(y[length + 1 :])


def bits_per_sequence(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the recalled bits in bits, summed over a sequence, averaged over the batch."""
    nats = F.binary_cross_entropy_with_logits(logits, targets, reduction="sum") / targets.shape[1]
    return nats / math.log(2.0)


@torch.no_grad()
def evaluate(model: CopyModel, lengths: list[int], *, bits: int, batch: int, seed: int) -> tuple[float, float]:
    """Mean bits per sequence and fraction of wrong bits over ``batch`` sequences of each length."""
    generator = torch.Generator().manual_seed(seed)
    total_bits, wrong, count = 0.0, 0.0, 0
    for length in lengths:
        inputs, targets = copy_batch(batch, length, bits, generator)
        logits = model(inputs, length)
        total_bits += float(bits_per_sequence(logits, targets))
        wrong += float(((logits > 0).float() != targets).float().sum())
        count += targets.numel()
    return total_bits / len(lengths), wrong / count


def train(
    model: CopyModel,
    *,
    bits: int,
    max_length: int,
    iterations: int,
    batch: int,
    lr: float,
    seed: int,
    curriculum: bool,
    time_limit: float,
    label: str,
) -> tuple[int, float]:
    """Adam with gradient-norm clipping; lengths uniform in ``1..current_max``, where ``current_max`` grows
    from 4 to ``max_length`` whenever the model copies the current lengths well (``curriculum``)."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    current_max = min(4, max_length) if curriculum else max_length
    running = None
    skipped = 0
    started = time.perf_counter()
    for iteration in range(1, iterations + 1):
        length = int(torch.randint(1, current_max + 1, (1,), generator=generator))
        inputs, targets = copy_batch(batch, length, bits, generator)
        loss = bits_per_sequence(model(inputs, length), targets)
        optimizer.zero_grad(set_to_none=True)
        (loss / length).backward()  # per-step loss: the gradient scale does not grow with the length
        skipped += not clipped_step(optimizer, model.parameters(), 10.0)  # an overflowed gradient is left out
        per_step = loss.item() / length
        running = per_step if running is None else 0.98 * running + 0.02 * per_step
        if iteration % 100 == 0:
            elapsed = time.perf_counter() - started
            print(
                f"[{label}] iter {iteration:6d}  max_len {current_max:2d}  bits/step {running:.4f}  {elapsed:.0f}s"
                + (f"  ({skipped} steps left out: gradient not finite)" if skipped else ""),
                flush=True,
            )
            if curriculum and current_max < max_length and running < 0.05:
                current_max = min(max_length, current_max + 4)
                running = None
            if elapsed > time_limit:
                break
    return iteration, time.perf_counter() - started


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bits", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=20)
    parser.add_argument("--eval-length", type=int, default=40)
    parser.add_argument("--iterations", type=int, default=8000)
    parser.add_argument("--time-limit", type=float, default=1500.0, help="seconds of training per model, at most")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--slots", type=int, default=128)
    parser.add_argument("--width", type=int, default=20)
    parser.add_argument("--controller", type=int, default=100, help="NTM controller (LSTM) width")
    parser.add_argument("--init", choices=["constant", "learned"], default="constant", help="initial memory")
    parser.add_argument("--no-curriculum", action="store_true")
    parser.add_argument("--skip-lstm", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)

    torch.manual_seed(args.seed)
    ntm = CopyModel(
        NTMCore(
            input_size=args.bits + 1,
            hidden_size=args.controller,
            slots=args.slots,
            width=args.width,
            read_heads=1,
            shift_range=1,
            controller="lstm",
            init=args.init,
        ),
        args.bits,
    )
    # LSTM of similar parameter count: 4H(I + H + 2) + (H + 1) bits ~ NTM's count.
    target = parameter_count(ntm)
    lstm_hidden = next(h for h in range(8, 1024) if 4 * h * (args.bits + 1 + h + 2) + (h + 1) * args.bits >= target)
    torch.manual_seed(args.seed)
    lstm = CopyModel(LSTMCore(input_size=args.bits + 1, hidden_size=lstm_hidden), args.bits)
    print(f"NTM: {parameter_count(ntm)} parameters; LSTM({lstm_hidden}): {parameter_count(lstm)} parameters")

    common = dict(
        bits=args.bits,
        max_length=args.max_length,
        iterations=args.iterations,
        batch=args.batch,
        lr=args.lr,
        seed=args.seed,
        curriculum=not args.no_curriculum,
        time_limit=args.time_limit,
    )
    results = {}
    ntm_seconds = args.time_limit
    for label, model in (("NTM", ntm), ("LSTM", lstm)):
        if label == "LSTM" and args.skip_lstm:
            continue
        if label == "LSTM":  # the same wall-clock budget as the NTM
            common.update(iterations=10**9, time_limit=ntm_seconds)
        iterations, seconds = train(model, label=label, **common)  # type: ignore[arg-type]
        ntm_seconds = seconds if label == "NTM" else ntm_seconds
        train_bits, train_error = evaluate(
            model, list(range(1, args.max_length + 1)), bits=args.bits, batch=32, seed=args.seed + 1
        )
        long_bits, long_error = evaluate(model, [args.eval_length], bits=args.bits, batch=64, seed=args.seed + 2)
        results[label] = (train_bits, long_error)
        print(
            f"{label}: trained {iterations} iterations ({iterations * args.batch} sequences) in {seconds:.0f}s; "
            f"lengths 1-{args.max_length}: {train_bits:.4f} bits/seq, bit error {train_error:.4%}; "
            f"length {args.eval_length}: {long_bits:.2f} bits/seq, bit error {long_error:.4%}"
        )
    train_bits, long_error = results["NTM"]
    if "LSTM" in results:
        lstm_bits, lstm_error = results["LSTM"]
        print(f"lstm_bits_per_seq: {lstm_bits:.4f}, lstm_len{args.eval_length}_bit_error: {lstm_error:.4f}")
    print(f"bits_per_seq: {train_bits:.4f}, len{args.eval_length}_bit_error: {long_error:.4f}")


if __name__ == "__main__":
    main()
