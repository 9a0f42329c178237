"""A causal transformer memory core: attention over the steps of the current trial.

The memory of an RL² agent can be the trial's own history read by attention instead of a recurrent
state (Mishra et al. 2018, SNAIL; Melo 2022, TrMRL; Grigsby et al. 2024, AMAGO). In each block a
step attends to itself and the ``context - 1`` steps before it *within the same trial*: a trial
start hides all earlier steps, exactly as a reset zeroes a GRU's state.

The state holds every block's attention keys and values for the last ``context`` steps,
kept as a ring (each step goes into slot ``cursor % context``, ``cursor`` counting the steps the
state has taken, trial starts included; attention does not care about slot order, and each slot's
age follows from the cursor), plus each env's position in its trial. A whole-trial replay from a
stored cache computes every step in one parallel pass over time (a (T, context + T) attention mask
carries the trial starts and the window), so there is no Python loop over time.

A rollout step without autograd writes its keys and values into the ring in place instead of
copying the cache (with copies, one step of 256 envs through 2 blocks of 64 took 14.8 ms; in
place, about 4). Only rings that a step of this core made are written in place: not the rings of
:meth:`TransformerCore.initial_state`, nor a :func:`memrl.memory.clone_state` or
:func:`memrl.memory.index_state` of a state, nor inference-mode tensors; their first step works on
a copy. The ring holds one step more than a step can see, so the slot an in-place step
overwrites (the cursor's, trial start or not) is one that no step of the old state sees either:
the state it was given stays valid for one more call, and such a call (a second action from the
same state, say) sees from the ring's version counter (past the state's ``stamp``) that the ring
is no longer its own and works on a copy. A state whose ring has been stepped on twice since has
lost a step it could see; using it raises an error that says to :func:`memrl.memory.clone_state`
a state that is to be stepped from again.

Pre-layer-norm blocks (attention, then a GELU MLP), a learned embedding of the position in the
trial (steps since its start, capped at ``context - 1``), and a final layer norm.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from memrl.memory.base import MemoryCore

_OWN_RING = "_memrl_own_ring"  # set on the rings a step of the core made (see the module notes)


class TransformerState(NamedTuple):
    keys: tuple[torch.Tensor, ...]  # per block (B, heads, context, hidden / heads): the cached keys, a ring over time
    values: tuple[torch.Tensor, ...]  # per block, like keys
    position: torch.Tensor  # (B,) long: steps of the current trial seen so far (the next step's position)
    cursor: torch.Tensor  # (B,) long: steps since the initial state; the next one goes into slot cursor % context
    stamp: torch.Tensor  # (B,) long: the rings' version counter when this state was made, -1 if unknown


class _Block(nn.Module):
    def __init__(self, width: int, heads: int, ff_mult: int) -> None:
        super().__init__()
        self.heads = heads
        self.attn_norm = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.ff_norm = nn.LayerNorm(width)
        self.ff = nn.Sequential(nn.Linear(width, ff_mult * width), nn.GELU(), nn.Linear(ff_mult * width, width))

    def forward(
        self,
        h: torch.Tensor,
        ring_k: torch.Tensor,
        ring_v: torch.Tensor,
        mask: torch.Tensor,
        write: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``h (B, T, D)`` attending to the cached keys and values ``ring_k``, ``ring_v`` and to itself.

        The rings are ``(B, heads, R, D / heads)``. Without ``write``, ``mask`` is ``(B, T, R + T)``
        over the ring and the new steps. With ``write`` (one step, ``T = 1``), the step's key and
        value first go into the rings in place at slot ``write (B,)``, and ``mask (B, 1, R)`` covers
        the rings alone: no copy of the cache. Returns the new ``h`` and the steps' own keys and
        values side by side, ``(B, T, 2 D)``.
        """
        B, T, D = h.shape

        def split(z: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, heads, T, D / heads)
            return z.view(B, T, self.heads, D // self.heads).transpose(1, 2)

        qkv = self.qkv(self.attn_norm(h))  # (B, T, 3 D)
        q, k, v = (split(z) for z in qkv.chunk(3, dim=-1))
        if write is None:
            keys, values = torch.cat([ring_k, k], dim=2), torch.cat([ring_v, v], dim=2)  # (B, heads, R + T, D / heads)
        else:
            rows = torch.arange(B, device=h.device)
            ring_k[rows, :, write], ring_v[rows, :, write] = k[:, :, 0], v[:, :, 0]
            keys, values = ring_k, ring_v
        if write is None:  # a chunk: torch's fused kernel (forward and backward)
            attended = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask.unsqueeze(1))
        else:  # one step: plain attention on the contiguous rings (the fused CPU kernel took 1.9 ms for 256 envs)
            scores = (q @ keys.transpose(-1, -2)) * (D // self.heads) ** -0.5  # (B, heads, 1, R)
            attended = scores.masked_fill(~mask.unsqueeze(1), float("-inf")).softmax(dim=-1) @ values
        h = h + self.proj(attended.transpose(1, 2).reshape(B, T, D))
        return h + self.ff(self.ff_norm(h)), qkv[..., D:]


class TransformerCore(MemoryCore):
    """Causal transformer over the current trial's steps, with a key/value cache as its memory state.

    ``hidden_size`` is the model width, ``num_layers`` the blocks; ``heads`` attention heads (they
    divide ``hidden_size``); in each block a step attends to at most ``context`` steps (itself
    included) of its own trial, so with several blocks it sees further back through the steps it
    attends to, as in Transformer-XL; ``ff_mult`` is the MLP's width over ``hidden_size``.
    """

    options_section = "transformer"  # its options come from policy.transformer

    def __init__(
        self,
        *,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        heads: int = 4,
        context: int = 128,
        ff_mult: int = 2,
    ) -> None:
        super().__init__()
        if heads < 1 or hidden_size % heads:
            raise ValueError(f"transformer: heads ({heads}) must be positive and divide hidden_size ({hidden_size})")
        if context < 1:
            raise ValueError(f"transformer: context must be at least 1 step, got {context}")
        if ff_mult < 1:
            raise ValueError(f"transformer: ff_mult must be a positive integer, got {ff_mult}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.heads, self.context = heads, context
        self.output_size = hidden_size
        self.embed = nn.Linear(input_size, hidden_size)
        self.position = nn.Embedding(context, hidden_size)
        nn.init.normal_(self.position.weight, std=0.02)
        self.blocks = nn.ModuleList(_Block(hidden_size, heads, ff_mult) for _ in range(num_layers))
        self.out_norm = nn.LayerNorm(hidden_size)

    def initial_state(self, batch: int, device: torch.device | str = "cpu") -> TransformerState:
        def ring() -> torch.Tensor:
            return torch.zeros(batch, self.heads, self.context, self.hidden_size // self.heads, device=device)

        rings = [(ring(), ring()) for _ in range(self.num_layers)]
        zeros = torch.zeros(batch, dtype=torch.long, device=device)
        unknown = torch.full_like(zeros, -1)  # not made by a step: never written in place (see the module notes)
        return TransformerState(tuple(k for k, _ in rings), tuple(v for _, v in rings), zeros, zeros.clone(), unknown)

    def forward(
        self, x: torch.Tensor, state: TransformerState, starts: torch.Tensor
    ) -> tuple[torch.Tensor, TransformerState]:
        T, B = starts.shape
        R, C = self.context, self.context - 1  # ring slots; steps before it that a step sees
        device = x.device
        steps = torch.arange(T, device=device).unsqueeze(1)  # (T, 1)
        # The last trial start at or before each step of the chunk (-1: none in this chunk).
        last_start = torch.where(starts, steps, torch.full_like(steps, -1)).cummax(dim=0).values  # (T, B)
        restarted = last_start >= 0
        position = torch.where(restarted, steps - last_start, state.position.unsqueeze(0) + steps)  # (T, B)

        # Slot j holds the step `age` before the chunk; it is of this trial if age <= position, and
        # step t of the chunk, t + age steps after it, sees it if that is at most C.
        slot = torch.arange(R, device=device)
        age = (state.cursor.unsqueeze(1) - 1 - slot).remainder(R) + 1  # (B, R), in 1..R
        in_trial = age <= state.position.unsqueeze(1)
        sees_cache = (~restarted).T.unsqueeze(-1) & in_trial.unsqueeze(1)
        sees_cache &= steps.view(1, T, 1) + age.unsqueeze(1) <= C  # (B, T, R)
        in_place = T == 1 and not torch.is_grad_enabled() and self._owns(state)
        if in_place:  # the step goes into its ring slot first and attends over the ring alone
            write = state.cursor % R  # (B,): the slot of the step R back, which no step sees
            mask = sees_cache | (slot == write.unsqueeze(1)).unsqueeze(1)  # (B, 1, R)
        else:
            write = None
            # New steps s seen from t: s <= t, of its trial (s >= its last start), at most C back.
            s = steps.view(1, T)
            causal = (s <= steps) & (steps - s <= C)  # (T, T)
            sees_new = causal.unsqueeze(0) & (s.unsqueeze(0) >= last_start.T.unsqueeze(-1))  # (B, T, T)
            mask = torch.cat([sees_cache, sees_new], dim=-1)  # (B, T, R + T)
            # The ring after the chunk: slot j takes the chunk's step that lands on it last, if any.
            new_age = (state.cursor.unsqueeze(1) + T - 1 - slot).remainder(R) + 1  # (B, R): ages after the chunk
            source = T - new_age  # (B, R) the chunk step that slot gets
            fresh = (source >= 0) & (source >= last_start[-1].unsqueeze(1))  # a step of the chunk's last trial
            rows = (torch.arange(B, device=device).unsqueeze(1) * T + source.clamp(min=0)).view(-1)  # (B * R,)
            keep = fresh.view(B, 1, R, 1)

        h = (self.embed(x) + self.position(position.clamp(max=C))).transpose(0, 1)  # (B, T, D)
        keys, values = [], []
        for block, ring_k, ring_v in zip(self.blocks, state.keys, state.values, strict=True):
            h, kv = block(h, ring_k, ring_v, mask, write)
            if in_place:
                keys.append(ring_k)
                values.append(ring_v)
            else:  # slot j of the new ring: step source[j] of the chunk where fresh, else the old slot
                picked = kv.reshape(B * T, -1).index_select(0, rows)  # (B * R, 2 D): whole rows, one copy
                picked = picked.view(B, R, 2, self.heads, -1).permute(2, 0, 3, 1, 4)  # (2, B, heads, R, D / heads)
                keys.append(torch.where(keep, picked[0], ring_k).contiguous())
                values.append(torch.where(keep, picked[1], ring_v).contiguous())
        y = self.out_norm(h).transpose(0, 1)  # (T, B, D)
        if not in_place and not keys[0].requires_grad:
            for ring in (*keys, *values):
                setattr(ring, _OWN_RING, True)  # made by this step: later steps may write into it
        stamp = torch.full_like(state.stamp, _version(keys[0]))
        return y, TransformerState(tuple(keys), tuple(values), position[-1] + 1, state.cursor + T, stamp)

    def _owns(self, state: TransformerState) -> bool:
        """Whether this state's ring is its own to write into (see the module notes).

        The first block's key ring counts its writes: one per in-place step (a view from
        :func:`memrl.memory.index_state` shares the count; a clone starts again from 0). Above the
        state's stamp by more than one: two steps from this state or its successors overwrote a slot
        that this state sees: raise. A ring made by a step of this core and at the state's stamp
        (nothing wrote since the state was made) is the state's own; any other works on a copy.
        """
        ring = state.keys[0]
        version, oldest = _version(ring), int(state.stamp.min())
        if version > oldest + 1:
            raise ValueError(
                "TransformerCore: this memory state was stepped on more than once already, so its key/value "
                "cache has been overwritten; to step from a state again later, keep memrl.memory.clone_state(state)"
            )
        mine = getattr(ring, _OWN_RING, False) and version >= 0
        return mine and version == oldest == int(state.stamp.max())


def _version(ring: torch.Tensor) -> int:
    """The ring's in-place write count, or -1 for an inference-mode tensor (which keeps none)."""
    return -1 if ring.is_inference() else ring._version
