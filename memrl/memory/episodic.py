"""Episodic memory that outlives trials: a differentiable neural dictionary and the epLSTM.

Ritter et al. (2018), "Been There, Done That: Meta-Learning with Episodic Recall", on top of the
differentiable neural dictionary (DND) of Pritzel et al. (2017):

- :class:`EpisodicStore` holds ``(key, value)`` pairs per environment slot (``scope="env"``) or
  one store for all slots (``scope="shared"``). Keys are context embeddings computed by the
  policy, values are the recurrent core's state (the LSTM cell state). A lookup returns the k
  nearest keys by Euclidean distance (one matrix product plus top-k, batched over queries) and
  their values. A full store evicts its least recently used entry (a write or a recall counts
  as a use). The store lives outside the autograd graph and outside the per-trial memory
  state: trial resets do not touch it.
- :func:`kernel_read` turns a lookup into the retrieved value with the inverse-distance kernel
  ``w_i = k(q, h_i) / sum_j k(q, h_j)``, ``k(q, h) = 1 / (||q - h||^2 + delta)``,
  ``m = sum_i w_i v_i``; it is differentiable with respect to the query ``q`` (the neighbours'
  keys and values are constants). The trainer stores each step's neighbours in its rollout
  buffer and calls it again on replay, so the replayed policy equals the acting one.
- :class:`EpLSTMCore` is the epLSTM: an LSTM whose cell update has a third, learned
  *reinstatement* gate that adds the retrieved cell state,
  ``c_t = f_t * c_{t-1} + i_t * g_t + r_t * tanh(m_t)``, ``r_t = sigmoid(W_r [x_t, h_{t-1}] + b_r)``.
- :class:`EpisodicMemory` runs a store step by step for the trainer and ``predict``: it writes the
  pending ``(key, value)`` of the previous step when an episode (or trial) has ended, clears
  stores as configured, looks up the current queries, and counts hits for TensorBoard.

Layout: sequences are time-major ``(T, B, ...)``; store tensors are ``(S, C, ...)`` for S stores of
capacity C.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Literal, NamedTuple, TypeVar

import torch
from torch import nn

from memrl.memory.base import MemoryCore

_EMPTY_DISTANCE = 1e30  # half squared distance of an empty slot: above any real one, finite so bf16 matmuls stay finite
_EMPTY_BITS = int(torch.tensor(_EMPTY_DISTANCE / 2, dtype=torch.bfloat16).view(torch.int16))  # its half, as int16 bits
_INF_BITS = int(torch.tensor(float("inf"), dtype=torch.bfloat16).view(torch.int16))
_BLOCK = 32  # a large store holds a whole number of blocks of 32 entries (checkpoints rely on it)
_GROUP = 16  # the blocked search ranks blocks of _GROUPS groups of _GROUP entries, then their groups, then entries
_GROUPS = 4
_BLOCKS = 8  # blocks per super-block, the first round of the blocked search
_LARGE_STORE = 16_384  # capacity from which search runs in bfloat16 with block pruning
_BF16_ROUNDING = 2.0**-8  # unit roundoff of bfloat16 (8 significant bits)
_MAX_GROUPS = 64  # groups a query may need in a second try of stage 2, before it is searched over the whole store
_MAX_ENTRIES = 512  # entries likewise


class Recall(NamedTuple):
    """The k nearest neighbours of each query: ``keys (..., k, K)``, ``values (..., k, V)``, ``mask (..., k)``.

    ``slots (..., k)`` are the neighbours' slots in their store (-1 where ``mask`` is False).
    """

    keys: torch.Tensor
    values: torch.Tensor
    mask: torch.Tensor
    slots: torch.Tensor


def kernel_read(query: torch.Tensor, recall: Recall, delta: float = 1e-3) -> torch.Tensor:
    """Inverse-distance-kernel average of the neighbours' values: ``(..., K) -> (..., V)``.

    Differentiable with respect to ``query``. Rows with no valid neighbour read zeros.
    """
    distance = (query.unsqueeze(-2) - recall.keys).pow(2).sum(-1)  # (..., k)
    kernel = torch.where(recall.mask, 1.0 / (distance + delta), torch.zeros_like(distance))
    weights = kernel / kernel.sum(-1, keepdim=True).clamp(min=1e-12)
    return (weights.unsqueeze(-1) * recall.values).sum(-2)  # (..., k, V) -> (..., V)


_POOLS: dict[int, tuple[ThreadPoolExecutor, threading.Lock]] = {}
_POOLS_LOCK = threading.Lock()
T = TypeVar("T")


def _search_pool(workers: int) -> tuple[ThreadPoolExecutor, threading.Lock]:
    """A pool of ``workers`` threads that each run torch single-threaded (torch's thread count is per thread),
    and the lock that gives it to one split at a time."""
    with _POOLS_LOCK:  # two threads asking at once get the same pool
        if workers not in _POOLS:
            pool = ThreadPoolExecutor(
                max_workers=workers, thread_name_prefix="memrl-store", initializer=torch.set_num_threads, initargs=(1,)
            )
            _POOLS[workers] = pool, threading.Lock()
        return _POOLS[workers]


def _run_split(work: Callable[[int], T], parts: list[int]) -> list[T]:
    """``work`` on every part: the calling thread does the first, pool workers the others, in parallel.

    One split holds the pool at a time: parts of one split may wait on each other (a barrier), so
    two splits sharing the workers (two stores searched from two threads) could each hold a worker
    the other's parts wait for.
    """
    if len(parts) == 1:
        return [work(parts[0])]
    pool, lock = _search_pool(len(parts) - 1)
    with lock:
        pending = [pool.submit(work, part) for part in parts[1:]]
        try:
            first = work(parts[0])
        finally:  # also on an interrupt: the workers finish (or fail) before the pool is given back
            wait(pending)
        return [first, *(future.result() for future in pending)]


@contextlib.contextmanager
def _single_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _split(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` (float32) as two parts, each a bfloat16 number, that add up to it within float32's precision."""
    high = x.bfloat16().float()
    return high, x - high


def _block_min(distances: torch.Tensor, out: torch.Tensor) -> None:
    """Smallest of each block of rows: bfloat16 ``distances (C, b)`` into int16 ``out (C/size, b)``.

    The block size is ``C / len(out)``. The minimum is taken on the bfloat16 bit patterns read as
    int16, which torch reduces about 7x faster than bfloat16. Non-negative bfloat16 values order
    exactly like their bit patterns; a negative one (a distance of about zero, below zero by
    rounding) reads as a negative int16, so it still ranks before every positive distance, which is
    all the block ranking needs. ``out`` therefore holds bit patterns: compare them with each other,
    not as numbers.

    torch reduces a middle dimension fast when the rows are 64 wide: for a narrower ``b`` dividing
    64, ``fold`` consecutive rows are read as one row of 64, and the ``fold`` column groups are then
    folded together by halving.
    """
    bits = distances.view(torch.int16)
    b, size = bits.shape[1], bits.shape[0] // out.shape[0]
    fold = 64 // b if b < 64 and 64 % b == 0 and size % (64 // b) == 0 else 1
    if fold == 1:
        torch.amin(bits.view(-1, size, b), dim=1, out=out)
        return
    wide = bits.view(-1, size // fold, fold * b).amin(1)  # (C/size, fold*b): fold groups of b columns
    while wide.shape[1] > 2 * b:
        half = wide.shape[1] // 2
        wide = torch.minimum(wide[:, :half], wide[:, half:])
    torch.minimum(wide[:, :b], wide[:, b:], out=out)


_MAX_KEY_NORM = 1e14  # keys and queries above this norm would reach the empty slot's distance (_EMPTY_DISTANCE)


def _check_keys(keys: torch.Tensor, what: str, squared: torch.Tensor | None = None) -> None:
    """A clear error for keys or queries that the store cannot rank: not finite, or of norm above 1e14.

    ``squared``: the keys' squared norms, where the caller has them.
    """
    if squared is None and keys.numel():
        squared = keys.detach().float().pow(2).sum(-1)
    if squared is not None and not float(squared.max()) <= _MAX_KEY_NORM**2:
        raise ValueError(
            f"EpisodicStore: a {what} is not finite (nan or inf) or has a norm above {_MAX_KEY_NORM:.0e}; the store "
            "ranks distances below that scale only. Check the key encoder's outputs (a diverged policy gives nan)."
        )


class EpisodicStore:
    """Fixed-capacity key-value stores with k-nearest-neighbour lookup and LRU eviction.

    ``num_stores`` stores (one per env slot, or 1 when ``shared`` by all slots) of ``capacity``
    entries each. A lookup ranks entries by half the squared Euclidean distance ``||q - h||^2 / 2``,
    one matrix product of augmented queries and keys. A shared store of ``capacity >= 16384``
    searches in bfloat16, pruned by the minima of blocks and groups of entries, and ranks the best
    candidates again in float32 (exact: see :meth:`_blocked_search`); the neighbours' float32 keys
    are returned, so :func:`kernel_read` is exact either way. A store is not safe to use from two threads at once
    (its lookups share scratch buffers); two stores may be.
    """

    def __init__(
        self,
        *,
        num_stores: int,
        capacity: int,
        key_size: int,
        value_size: int,
        neighbors: int,
        device: torch.device | str = "cpu",
        shared: bool | None = None,
    ) -> None:
        if min(num_stores, capacity, key_size, value_size, neighbors) < 1:
            raise ValueError("EpisodicStore: num_stores, capacity, key_size, value_size and neighbors must be >= 1")
        self.shared = num_stores == 1 if shared is None else shared
        """One store for every env slot; else one per slot (a per-env store of one env stays per-env when resized)."""
        if self.shared and num_stores != 1:
            raise ValueError(f"EpisodicStore: a shared store is one store, got num_stores={num_stores}")
        self.num_stores, self.key_size, self.value_size = num_stores, key_size, value_size
        self.neighbors = min(neighbors, capacity)
        # The blocked search of a large shared store keeps 3k + 1 of its 64-entry blocks in one round: for
        # more neighbours than that allows (or per-env stores) the search runs in float32 over every entry.
        self.blocked = capacity >= _LARGE_STORE and num_stores == 1 and 3 * self.neighbors + 1 < capacity // 64
        self.capacity = -(-capacity // _BLOCK) * _BLOCK if self.blocked else capacity  # whole blocks
        self.device = torch.device(device)
        S, C = num_stores, self.capacity
        self.keys = torch.zeros(S, C, key_size, device=self.device)
        self.values = torch.zeros(S, C, value_size, device=self.device)
        self.last_used = torch.full((S, C), -1, dtype=torch.long, device=self.device)  # -1: empty slot
        self.task_ids = torch.zeros(S, C, dtype=torch.long, device=self.device)
        self.owners = torch.zeros(S, C, dtype=torch.long, device=self.device)  # env slot that wrote each entry
        self.clock = 0
        search_dtype = torch.bfloat16 if self.blocked else torch.float32
        # Search rows [h, n, 1] meet query rows [-q, 1, p] (n = ||h||^2 / 2, p = ||q||^2 / 2, each as a sum of two
        # bfloat16 numbers, so that in bfloat16 only h and q are rounded): the product is ||q - h||^2 / 2, small
        # near the query, so a bfloat16 result keeps near neighbours apart (accumulated in float32).
        self._search = torch.zeros(S, C, key_size + 4, dtype=search_dtype, device=self.device)
        self._search[..., key_size] = _EMPTY_DISTANCE
        self._max_norm = 0.0  # largest |h| written since the store was last emptied (bounds bfloat16 errors)
        self._max_residual = 0.0  # largest |h - bfloat16(h)| likewise
        self._scratch: tuple[torch.Tensor, ...] | None = None  # scratch of the blocked search
        self._table: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None  # see _float64_table

    # -- queries ---------------------------------------------------------------------------
    @property
    def sizes(self) -> torch.Tensor:
        """Entries held by each store, ``(S,)``."""
        return (self.last_used >= 0).sum(1)

    def _augment(self, queries: torch.Tensor) -> torch.Tensor:
        queries = queries.float()
        ones = torch.ones_like(queries[..., :1])
        return torch.cat([-queries, ones, ones, *_split(0.5 * queries.pow(2).sum(-1, keepdim=True))], -1).to(
            self._search.dtype
        )  # (..., K+4)

    def _set_search_rows(self, store: torch.Tensor | slice, slot: torch.Tensor | slice, keys: torch.Tensor) -> None:
        self._table = None
        keys = keys.float()
        half_norm, ones = 0.5 * keys.pow(2).sum(-1, keepdim=True), torch.ones_like(keys[..., :1])
        if keys.numel():
            self._max_norm = max(self._max_norm, float(half_norm.max().mul(2).sqrt()))
            residual = (keys - keys.bfloat16().float()).norm(dim=-1).max()
            self._max_residual = max(self._max_residual, float(residual))
        self._search[store, slot] = torch.cat([keys, *_split(half_norm), ones, ones], -1).to(self._search.dtype)

    @torch.no_grad()
    def lookup(self, queries: torch.Tensor, touch: bool = True) -> Recall:
        """Nearest neighbours of ``queries``: ``(S, K)`` with one query per store, or ``(B, K)`` for a shared store.

        ``touch`` marks the returned entries as used (LRU), as the DND does.
        """
        k = self.neighbors
        if self.num_stores == 1 and self.blocked and queries.shape[0]:
            workers = torch.get_num_threads() if self.device.type == "cpu" else 1
            with _single_thread():  # the whole lookup, touch included: see _blocked_search
                q = queries.detach().float()
                squared = q.pow(2).sum(-1)  # |q|^2: the check, the query rows and the error bound share it
                _check_keys(q, "query", squared)
                recall = self._blocked_search(q, squared, k, threads=workers)
                if touch:
                    self._touch(None, recall)
            return recall
        _check_keys(queries, "query")
        if queries.shape[0] == 0:
            return self._gather(None, torch.zeros(0, k, dtype=torch.long, device=self.device))
        candidates = min(k + 1, self.capacity)  # the k + 1 nearest by the product, in any order
        if self.num_stores == 1:
            distances = self._search[0] @ self._augment(queries).T  # (C, K+4) @ (K+4, B) -> (C, B)
            top = distances.topk(candidates, dim=0, largest=False, sorted=False)
            values, index = top.values.T, top.indices.T  # (B, k+1)
        else:
            if queries.shape[0] != self.num_stores:
                raise ValueError(
                    f"a per-env store takes one query per store: got {queries.shape[0]} for {self.num_stores}"
                )
            # (S, 1, K+4) @ (S, K+4, C) -> (S, C): each env's query against its own store
            distances = torch.bmm(self._augment(queries).unsqueeze(1), self._search.transpose(1, 2)).squeeze(1)
            values, index = distances.topk(candidates, dim=1, largest=False, sorted=False)  # (S, k+1)
        store = (
            torch.zeros_like(index)
            if self.num_stores == 1
            else torch.arange(self.num_stores, device=self.device).unsqueeze(1).expand_as(index)
        )
        index, store = self._rerank(queries.float(), store, index, values, k)
        recall = self._gather(store, index)
        if touch:
            self._touch(store, recall)
        return recall

    def _rerank(
        self, q: torch.Tensor, store: torch.Tensor, index: torch.Tensor, values: torch.Tensor, k: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The k nearest of the float32 search's candidates ``(store, index)`` (``(B, c)``, in any order) of
        queries ``q (B, K)``, ranked again without the product's cancellation; ``values (B, c)``: their half
        squared distances by the product.

        The product's error is at most ``e = gamma (|q| |h| + ||h||^2 / 2 + ||q||^2 / 2)`` (float32 sums of
        K + 4 terms), so an entry left out is at least the farthest candidate's value less e away. A
        query whose k-th neighbour is farther (keys that sit close together far from the origin, where
        the product cancels) is searched again over its whole store in float64. Returns ``(index, store)``.
        """
        B, c = index.shape
        flat = (store * self.capacity + index).reshape(-1)  # rows of the (S*C, ...) tables
        keys = self.keys.view(-1, self.key_size).index_select(0, flat).view(B, c, self.key_size)
        exact = keys.sub_(q.unsqueeze(1)).pow_(2).sum(-1)  # (B, c)
        empty = self.last_used.view(-1).index_select(0, flat).view(B, c) < 0
        exact.masked_fill_(empty, _EMPTY_DISTANCE)  # passes the certificate when all left out are empty too
        ranked = exact.topk(k, dim=1, largest=False)
        store, index = store.gather(1, ranked.indices), index.gather(1, ranked.indices)
        if c < self.capacity:
            gamma = (self.key_size + 4) * 2.0**-24 / (1 - (self.key_size + 4) * 2.0**-24)
            norm, H = q.norm(dim=1), self._max_norm
            error = 1.01 * gamma * (norm * H + 0.5 * H**2 + 0.5 * norm**2)
            doubtful = torch.nonzero(0.5 * ranked.values[:, -1] * (1 + 2.0**-20) > values.amax(1) - error).flatten()
            if self.num_stores == 1 and doubtful.numel():  # rare: near ties at the edge
                index[doubtful] = self._exhaustive(q[doubtful], k)
            for i in doubtful.tolist() if self.num_stores > 1 else []:  # each in its own store
                index[i] = self._exhaustive(q[i : i + 1], k, self._float64_table(int(store[i, 0])))[0]
        return index, store

    def _touch(self, store: torch.Tensor | None, recall: Recall) -> None:
        """Marks the recalled entries as used now (LRU); ``store`` None: all in store 0."""
        if store is None and bool(recall.mask.all()):  # the common case: k entries for every query
            self.last_used[0].index_fill_(0, recall.slots.flatten(), self.clock)
            self.clock += 1
        elif bool(recall.mask.any()):
            if store is None:
                self.last_used[0, recall.slots[recall.mask]] = self.clock
            else:
                self.last_used[store[recall.mask], recall.slots[recall.mask]] = self.clock
            self.clock += 1

    def _gather(self, store: torch.Tensor | None, index: torch.Tensor) -> Recall:
        """The entries ``(store, index)`` (both ``(B, k)``; ``store`` None: all in store 0) as a :class:`Recall`."""
        flat = index.flatten() if store is None else (store * self.capacity + index).flatten()  # rows of (S*C, ...)
        mask = (self.last_used.view(-1).index_select(0, flat) >= 0).view(index.shape)
        return Recall(
            keys=self.keys.view(-1, self.key_size).index_select(0, flat).view(*index.shape, self.key_size),  # (B, k, K)
            values=self.values.view(-1, self.value_size).index_select(0, flat).view(*index.shape, self.value_size),
            mask=mask,
            slots=torch.where(mask, index, torch.full_like(index, -1)),
        )

    def _blocked_search(self, q: torch.Tensor, squared: torch.Tensor, k: int, threads: int) -> Recall:
        """The k nearest entries of each query ``q (B, K)`` (float32; ``squared (B,)``: their squared norms) in a
        large shared store.

        Stage 1 computes every entry's distance in bfloat16 and keeps the minimum of each group of 16
        entries, of each block of 4 groups and of each super-block of 8 blocks. Stage 2 ranks, by bfloat16
        distance, the super-blocks, the best super-blocks' blocks, their groups, and the best groups'
        entries, and ranks the best 4k + 1 entries again in float32 (:meth:`_rank`). Then a certificate: a
        bfloat16 distance is within a bound of the true one (:meth:`_error_bound`), so an entry left out is
        at least as far as the nearest candidate that a round left out, less that bound. A query whose k-th
        neighbour found is farther than that is searched again (:meth:`_search_again`): over every group
        and entry within the bound, or, where keys sit so close together compared with their norms that
        bfloat16 cannot tell them apart, over the whole store in float64. The result is exact either way.

        ``threads`` threads share the work: the calling thread and single-threaded pool workers. In
        stage 1 each scores a contiguous share of the super-blocks for every query (the queries padded to
        16, 32, 64 or a multiple of 64, which keeps :func:`_block_min` fast); after a barrier, each
        ranks a share of the queries in stage 2. One barrier and one join per lookup instead of an
        OpenMP barrier per operation, so a busy core slows a lookup down instead of stalling it (with
        the second core taken by a training job, OpenMP's two threads took 140 ms). The caller runs
        the whole lookup at one torch thread: an operation on two OpenMP threads leaves OpenMP's
        second thread spinning on the core a worker needs (3 ms per lookup). The certificate runs
        once for all queries, after the join: small operations on two threads contend for the GIL.
        """
        B, C, K = q.shape[0], self.capacity, self.key_size
        width = next(w for w in (16, 32, 64) if w >= B) if B <= 64 else -(-B // 64) * 64  # score columns
        groups = C // _GROUP  # whole groups: C is a whole number of blocks of 32
        if self._scratch is None or self._scratch[0].shape[1] != width:  # reused: no page faults per call
            supers = -(-groups // (_GROUPS * _BLOCKS))  # of 512 entries; the last may be part empty
            self._scratch = (
                torch.empty(C, width, dtype=self._search.dtype, device=self.device),
                # the minima of groups and of blocks; rows past the last group or block stay +inf
                torch.full((supers * _BLOCKS * _GROUPS, width), _INF_BITS, dtype=torch.int16, device=self.device),
                torch.full((supers * _BLOCKS, width), _INF_BITS, dtype=torch.int16, device=self.device),
                torch.empty(supers, width, dtype=torch.int16, device=self.device),  # super-blocks' minima
                # query rows [-q, 1, 1, p] (see __init__); the rows of ones are written here, once
                torch.zeros(K + 4, width, dtype=self._search.dtype, device=self.device).index_fill_(
                    0, torch.tensor([K, K + 1], device=self.device), 1.0
                ),
            )
            # (width, 1, n): for query column c, the offsets j * width - (n - 1) * c of the n children of a
            # super-block (its blocks, n = 8: the super-block's row is known, so j * width + c), of a block (its
            # groups, n = 4) or of a group (its entries, n = 16) in the flat (rows, width) tables; see _rank
            column = torch.arange(width).unsqueeze(1)
            self._scratch += tuple(
                (torch.arange(n) * width - shift * column).unsqueeze(1).to(self.device)
                for n, shift in ((_BLOCKS, -1), (_GROUPS, _GROUPS - 1), (_GROUP, _GROUP - 1))
            )
        distances, group_min, block_min, super_min, augmented, of_super, of_block, of_group = self._scratch
        # this batch's query rows; columns past B (zeros, or earlier queries) are scored, never read
        augmented[:K, :B] = q.T
        augmented[:K, :B].neg_()
        augmented[K + 2, :B], augmented[K + 3, :B] = _split(0.5 * squared)  # p, as in _augment
        super_bounds = [round(i * super_min.shape[0] / threads) for i in range(threads + 1)]
        query_bounds = [round(i * B / threads) for i in range(threads + 1)]
        stage_1_done = threading.Barrier(threads)

        def search(part: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            first, last = query_bounds[part], query_bounds[part + 1]
            mine = super_min[:, first:last], q[first:last], *(of[first:last] for of in (of_super, of_block, of_group))
            try:
                top = slice(super_bounds[part], super_bounds[part + 1])
                blocks = slice(top.start * _BLOCKS, top.stop * _BLOCKS)
                group = slice(blocks.start * _GROUPS, min(blocks.stop * _GROUPS, groups))
                rows = slice(group.start * _GROUP, group.stop * _GROUP)
                if rows.stop > rows.start:
                    torch.mm(self._search[0, rows], augmented, out=distances[rows])  # (c, K+4) @ (K+4, width)
                    _block_min(distances[rows], group_min[group])
                groups_of_blocks = group_min[blocks.start * _GROUPS : blocks.stop * _GROUPS].view(-1, _GROUPS, width)
                torch.amin(groups_of_blocks, 1, out=block_min[blocks])
                torch.amin(block_min[blocks].view(-1, _BLOCKS, width), 1, out=super_min[top])
                stage_1_done.wait()
            except BaseException:  # an error, or Ctrl-C while waiting: the other threads stop waiting and fail too
                stage_1_done.abort()
                raise
            return self._rank(k, distances, group_min, block_min, *mine)

        index, kth, unseen = (torch.cat(part) for part in zip(*_run_split(search, list(range(threads))), strict=True))
        # The certificate: every entry left out is at least `unseen` away in bfloat16 (see _rank), so at least
        # that / (1 + u) - e truly; if the k-th found is no farther, the k found are the k nearest.
        bound = self._error_bound(q, squared.sqrt())
        unseen = unseen.view(torch.bfloat16).float().clamp_(min=0.0)  # a negative distance (rounding) counts as 0
        doubt = 0.5 * kth > unseen / (1 + _BF16_ROUNDING) - bound
        doubtful = torch.nonzero(doubt).flatten()  # rare on most keys: near ties at the edge
        if doubtful.numel():
            index[doubtful] = self._search_again(
                q, doubtful, bound, k, distances, group_min[:groups], block_min, threads
            )
        return self._gather(None, index)

    def _rank(
        self,
        k: int,
        distances: torch.Tensor,
        group_min: torch.Tensor,
        block_min: torch.Tensor,
        super_min: torch.Tensor,
        q: torch.Tensor,
        of_super: torch.Tensor,
        of_block: torch.Tensor,
        of_group: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Stage 2 for b queries ``q (b, K)``.

        From stage 1: ``distances (C, width)``, the minima of its groups of 16 rows ``group_min
        (C/16, width)`` and of its blocks of 4 groups ``block_min (C/64, width)`` (rows past the last
        group or block: +inf), and these queries' columns of the minima of super-blocks of 8 blocks
        ``super_min (C/512, b)``. ``of_super (b, 1, 8)``, ``of_block (b, 1, 4)`` and ``of_group (b, 1,
        16)``: for each query, the offsets of a super-block's blocks, of a block's groups and of a
        group's entries in the flat ``(rows, width)`` tables (see the comment in the code).

        Four rounds, each keeping the best 3k + 1 of its candidates by bfloat16 distance: super-blocks,
        their blocks, their groups, then the best 4k + 1 of the groups' entries, ranked again in float32.
        The rounds select without sorting, and the farthest kept candidate of each round bounds what that
        round left out. Returns the slots of the k nearest entries among the candidates ``(b, k)``, the
        k-th one's squared distance ``(b,)``, and ``unseen (b,)``: the least bfloat16 distance an entry
        left out can have, as int16 bit patterns (see :func:`_block_min`; +inf where nothing is left out).

        Candidates are ranked on bit patterns too: every negative distance (an exact match, below zero
        by rounding) ranks before every positive one, which is all the certificate needs, as it counts
        a negative ``unseen`` as zero. An empty slot's squared distance is ``_EMPTY_DISTANCE``, which
        passes the certificate exactly when every entry left out is empty too: a store holding fewer
        than k entries needs no second search.
        """
        b, width = q.shape[0], distances.shape[1]
        if b == 0:  # more threads than queries
            unseen = torch.zeros(0, dtype=torch.int16, device=self.device)
            return torch.zeros(0, k, dtype=torch.long, device=self.device), torch.zeros(0, device=self.device), unseen
        farthest_kept = []  # of each round that left candidates out: what it left out is at least this far

        def select(candidates: torch.Tensor, keep: int, dim: int = 1) -> torch.Tensor:
            if candidates.shape[dim] <= keep:
                shape = [1, 1]
                shape[dim] = -1
                return torch.arange(candidates.shape[dim], device=self.device).view(shape).expand_as(candidates)
            top = candidates.topk(keep, dim=dim, largest=False, sorted=False)
            farthest_kept.append(top.values.amax(dim))
            return top.indices

        # Positions in the flat (rows, width) tables: a kept candidate at row r of query column c sits at
        # f = r * width + c, and its n children (rows n r + j) at n f + (j width - (n - 1) c): of_block, of_group.
        supers = select(super_min, 3 * k + 1, dim=0).T  # (b, 3k+1)
        flat = torch.add(of_super, supers.unsqueeze(-1), alpha=_BLOCKS * width).reshape(b, -1)  # their blocks
        blocks = flat.gather(1, select(torch.take(block_min, flat), 3 * k + 1))
        flat = torch.add(of_block, blocks.unsqueeze(-1), alpha=_GROUPS).reshape(b, -1)  # their groups
        groups = flat.gather(1, select(torch.take(group_min, flat), 3 * k + 1))
        flat = torch.add(of_group, groups.unsqueeze(-1), alpha=_GROUP).reshape(b, -1)  # their entries
        candidates = torch.take(distances.view(torch.int16), flat)
        chosen = select(candidates, 4 * k + 1)
        rows = flat.gather(1, chosen).div_(width, rounding_mode="floor")  # (b, 4k+1) their slots
        if farthest_kept:
            unseen = torch.stack(farthest_kept).amin(0)
        else:  # nothing left out
            unseen = torch.full((b,), _INF_BITS, dtype=torch.int16, device=self.device)
        keys = self.keys[0].index_select(0, rows.view(-1)).view(b, -1, self.key_size)  # (b, 4k+1, K)
        exact = keys.sub_(q.unsqueeze(1)).pow_(2).sum(-1)  # squared, float32
        exact.masked_fill_(candidates.gather(1, chosen) >= _EMPTY_BITS, _EMPTY_DISTANCE)
        ranked = exact.topk(k, dim=1, largest=False)
        return rows.gather(1, ranked.indices), ranked.values[:, -1], unseen

    def _search_again(
        self,
        q: torch.Tensor,
        doubtful: torch.Tensor,
        bound: torch.Tensor,
        k: int,
        distances: torch.Tensor,
        group_min: torch.Tensor,
        block_min: torch.Tensor,
        threads: int,
    ) -> torch.Tensor:
        """Slots of the k nearest entries ``(d, k)`` of the queries ``q[doubtful]`` that the certificate left.

        With ``m`` the k-th smallest block minimum (below zero counts as zero), k entries are within m in
        bfloat16, so the k-th neighbour is within m / (1 - u) + e and every entry that near is within
        ``reach = (1 + u) (m / (1 - u) + 2 e)`` in bfloat16: all entries of the groups within reach that
        are within reach themselves are ranked in float32. A query with more than 64 such groups, or
        512 entries (keys bfloat16 cannot tell apart: close together compared with their norms), is
        searched over the whole store instead, all such queries at once (:meth:`_exhaustive`).
        """
        u, columns = _BF16_ROUNDING, doubtful.tolist()
        m = block_min[:, doubtful].view(torch.bfloat16).float().clamp_(min=0.0).kthvalue(k, dim=0).values  # (d,)
        reach = (1 + u) * (m / (1 - u) + 2 * bound[doubtful])  # bound: each query's _error_bound
        near = group_min[:, doubtful].view(torch.bfloat16).float() <= reach  # (C/16, d); below zero too
        found = torch.empty(len(columns), k, dtype=torch.long, device=self.device)
        whole: list[int] = []
        for j, (column, groups, limit) in enumerate(zip(columns, near.sum(0).tolist(), reach.tolist(), strict=True)):
            if groups <= _MAX_GROUPS:
                rows = (torch.nonzero(near[:, j]) * _GROUP + torch.arange(_GROUP, device=self.device)).flatten()
                rows = rows[distances[rows, column].float() <= limit]  # the entries within reach
                if k <= rows.numel() <= _MAX_ENTRIES:
                    exact = (self.keys[0, rows] - q[column]).pow(2).sum(-1)
                    found[j] = rows[exact.topk(k, largest=False).indices]
                    continue
            whole.append(j)
        if whole:
            shares = torch.linspace(0, len(whole), min(threads, len(whole)) + 1).round().long().tolist()
            table = self._float64_table()  # once, for every thread
            parts = _run_split(
                lambda part: self._exhaustive(q[doubtful[whole[shares[part] : shares[part + 1]]]], k, table),
                list(range(len(shares) - 1)),
            )
            found[whole] = torch.cat(parts)
        return found

    def _error_bound(self, q: torch.Tensor, norm: torch.Tensor) -> torch.Tensor:
        """``(b,)``: how far the bfloat16 product of a query row and a key row, before its own rounding to
        bfloat16, can be from the exact half squared distance, for queries ``q (b, K)`` (``norm (b,)``: their
        norms) and any key held.

        Only q and h are rounded (n and p are exact sums of two bfloat16 numbers, and a product of two
        bfloat16 numbers is exact in float32): |q.h - bf(q).bf(h)| <= |r_q| |h| + |q| |r_h| + |r_q| |r_h|
        with r = x - bf(x); then the low parts' rounding and the float32 sum of K + 4 terms, each within
        a small multiple of sum |a_i b_i| <= |q| |h| + n + p.
        """
        u, H, R = _BF16_ROUNDING, self._max_norm, self._max_residual
        residual = (q - q.bfloat16()).norm(dim=1)
        rounding = u * u + (self.key_size + 4) * 2.0**-24
        # residual H + norm R + residual R + rounding (norm H + H^2 / 2 + norm^2 / 2), in few operations
        bound = (norm * (0.5 * rounding) + (R + rounding * H)).mul_(norm).add_(residual, alpha=H + R)
        return bound.add_(0.5 * rounding * H**2).mul_(1.01)

    def _float64_table(self, store: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A store's keys in float64 ``(C, K)``, which slots hold an entry ``(C,)``, and each key's
        ``||h||^2 / 2`` in float64, +inf for an empty slot ``(C,)``: what :meth:`_exhaustive` searches.

        A shared store's is kept until the store changes (building it for 100,000 keys of width 64
        takes about 50 ms, and holds twice the keys' memory).
        """
        if self.num_stores == 1 and self._table is not None:  # dropped by every write, clear and forget
            return self._table
        keys, live = self.keys[store].double(), self.last_used[store] >= 0
        table = keys, live, torch.where(live, 0.5 * keys.pow(2).sum(1), float("inf"))
        if self.num_stores == 1:
            self._table = table
        return table

    def _exhaustive(
        self, queries: torch.Tensor, k: int, table: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Slots of the k nearest entries of ``queries (b, K)`` in one store (default: a shared store's), over
        every entry.

        In float64: the queries that come here are those whose neighbours sit closer together than
        bfloat16 resolves, often far from the origin compared with their spread, where a float32
        product ``||h||^2 / 2 - q.h`` would lose them to cancellation. ``table``: :meth:`_float64_table`.
        """
        keys, live, half_norms = table if table is not None else self._float64_table()
        q = queries.double()
        approx = torch.addmm(half_norms.unsqueeze(0), q, keys.T, alpha=-1.0)  # (b, C): half the distance less p
        rows = approx.topk(min(4 * k, approx.shape[1]), dim=1, largest=False).indices  # (b, 4k)
        exact = (keys[rows] - q.unsqueeze(1)).pow(2).sum(-1)  # (b, 4k): free of cancellation
        exact.masked_fill_(~live[rows], float("inf"))
        return rows.gather(1, exact.topk(k, dim=1, largest=False).indices)

    def nearest_task_ids(self, recall: Recall) -> torch.Tensor:
        """Task id of each query's nearest neighbour (-1 where the store had none), ``(B,)``."""
        nearest = recall.slots[:, 0]
        store = torch.zeros_like(nearest) if self.num_stores == 1 else torch.arange(nearest.shape[0])
        slot = nearest.clamp(min=0)
        ids = self.task_ids[store.to(self.device), slot]
        return torch.where(recall.mask[:, 0], ids, torch.full_like(ids, -1))

    # -- updates ---------------------------------------------------------------------------
    @torch.no_grad()
    def write(
        self,
        keys: torch.Tensor,
        values: torch.Tensor,
        store_index: torch.Tensor,
        task_ids: torch.Tensor | None = None,
    ) -> None:
        """Write ``keys (W, K)`` and ``values (W, V)`` into stores ``store_index (W,)``, evicting the LRU entries.

        A per-env store takes at most one write per call; a shared store takes any number.
        """
        W = keys.shape[0]
        if W == 0:
            return
        _check_keys(keys, "key")
        if task_ids is None:
            task_ids = torch.zeros(W, dtype=torch.long, device=self.device)
        if self.num_stores == 1:
            if self.capacity < W:  # more writes than room: the last ones win
                keys, values, task_ids = keys[-self.capacity :], values[-self.capacity :], task_ids[-self.capacity :]
                store_index, W = store_index[-self.capacity :], self.capacity
            store = torch.zeros(W, dtype=torch.long, device=self.device)
            slot = self.last_used[0].topk(W, largest=False).indices  # the W least recently used (empty first)
        else:
            store = store_index.to(self.device)
            if store.unique().numel() != W:
                raise ValueError("a per-env store takes at most one write per store per call")
            slot = self.last_used[store].argmin(1)
        self.keys[store, slot] = keys.to(self.keys.dtype)
        self.values[store, slot] = values.to(self.values.dtype)
        self.task_ids[store, slot] = task_ids.to(self.device)
        self.owners[store, slot] = store_index.to(self.device)
        self.last_used[store, slot] = self.clock
        self.clock += 1
        self._set_search_rows(store, slot, keys)

    @torch.no_grad()
    def clear(self, store_index: torch.Tensor | None = None) -> None:
        """Empty the given stores (all when None)."""
        self._table = None
        index = slice(None) if store_index is None else store_index.to(self.device)
        self.last_used[index] = -1
        self.keys[index] = 0.0
        self.values[index] = 0.0
        if store_index is None:
            self._max_norm = self._max_residual = 0.0
        self.task_ids[index] = 0
        self.owners[index] = 0
        self._search[index] = 0.0
        self._search[index, :, self.key_size] = _EMPTY_DISTANCE

    @torch.no_grad()
    def forget(self, entries: torch.Tensor) -> None:
        """Drop the entries flagged in the ``(S, C)`` bool mask ``entries``."""
        self._table = None
        self.last_used[entries] = -1
        self._search[entries] = 0.0
        self._search[..., self.key_size][entries] = _EMPTY_DISTANCE

    # -- persistence -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        """The store as plain tensors (checkpoints hold these arrays, never pickled objects)."""
        return {
            "keys": self.keys.cpu().clone(),
            "values": self.values.cpu().clone(),
            "last_used": self.last_used.cpu().clone(),
            "task_ids": self.task_ids.cpu().clone(),
            "owners": self.owners.cpu().clone(),
            "clock": torch.tensor(self.clock),
            "neighbors": torch.tensor(self.neighbors),
            "shared": torch.tensor(self.shared),
        }

    @classmethod
    def from_state_dict(cls, data: dict[str, torch.Tensor], device: torch.device | str = "cpu") -> EpisodicStore:
        S, C, K = data["keys"].shape
        store = cls(
            num_stores=S,
            capacity=C,
            key_size=K,
            value_size=data["values"].shape[-1],
            neighbors=int(data["neighbors"]),
            device=device,
            shared=bool(data["shared"]) if "shared" in data else None,  # checkpoints before the flag: by count
        )
        if store.capacity != C:
            raise ValueError(f"stored capacity {C} is not a whole number of {_BLOCK}-key blocks")
        store._load(data["keys"], data["values"], data["last_used"], data["task_ids"], data["owners"])
        store.clock = int(data["clock"])
        return store

    def _load(
        self,
        keys: torch.Tensor,
        values: torch.Tensor,
        last_used: torch.Tensor,
        task_ids: torch.Tensor,
        owners: torch.Tensor,
    ) -> None:
        self.keys.copy_(keys)
        self.values.copy_(values)
        self.last_used.copy_(last_used)
        self.task_ids.copy_(task_ids)
        self.owners.copy_(owners)
        self._max_norm = self._max_residual = 0.0
        self._set_search_rows(slice(None), slice(None), self.keys * (self.last_used >= 0).unsqueeze(-1))
        self.forget(self.last_used < 0)

    def resized(self, num_stores: int) -> EpisodicStore:
        """A copy with ``num_stores`` per-env stores (store i copies store ``i % S``); a shared store copies as is."""
        target = 1 if self.shared else num_stores
        copy = EpisodicStore(
            num_stores=target,
            capacity=self.capacity,
            key_size=self.key_size,
            value_size=self.value_size,
            neighbors=self.neighbors,
            device=self.device,
            shared=self.shared,
        )
        source = torch.arange(target, device=self.device) % self.num_stores
        copy._load(
            self.keys[source], self.values[source], self.last_used[source], self.task_ids[source], self.owners[source]
        )
        copy.clock = self.clock
        return copy


class EpLSTMState(NamedTuple):
    h: torch.Tensor  # (B, H)
    c: torch.Tensor  # (B, H)
    gate: torch.Tensor  # (B, H) reinstatement gate of the last step (for TensorBoard)


class EpLSTMCore(MemoryCore):
    """The epLSTM of Ritter et al. (2018): an LSTM with a reinstatement gate for retrieved cell states.

    Its input is ``[x_t, m_t]`` with ``m_t`` (the last ``memory_size`` features) the value read
    from the episodic store. Gates come from ``[x_t, h_{t-1}]``:

        i, f, o, r = sigmoid(.), g = tanh(.)
        c_t = f * c_{t-1} + i * g + r * tanh(m_t)
        h_t = o * tanh(c_t)
    """

    def __init__(self, *, input_size: int, hidden_size: int, memory_size: int, num_layers: int = 1) -> None:
        super().__init__()
        if num_layers != 1:
            raise ValueError("the epLSTM core has one layer; set policy.num_layers=1")
        self.input_size, self.hidden_size, self.memory_size = input_size, hidden_size, memory_size
        self.output_size = hidden_size
        x_size = input_size - memory_size
        if x_size < 1:
            raise ValueError("EpLSTMCore: input_size must exceed memory_size")
        self.input_map = nn.Linear(x_size, 5 * hidden_size)
        self.hidden_map = nn.Linear(hidden_size, 5 * hidden_size, bias=False)
        with torch.no_grad():  # forget-gate bias 1 (Jozefowicz et al. 2015); reinstatement starts half open
            self.input_map.bias.zero_()
            self.input_map.bias[hidden_size : 2 * hidden_size] = 1.0

    def initial_state(self, batch: int, device: torch.device | str = "cpu") -> EpLSTMState:
        zeros = torch.zeros(batch, self.hidden_size, device=device)
        return EpLSTMState(zeros, zeros.clone(), zeros.clone())

    def forward(self, x: torch.Tensor, state: EpLSTMState, starts: torch.Tensor) -> tuple[torch.Tensor, EpLSTMState]:
        H = self.hidden_size
        inputs, memory = x[..., : -self.memory_size], x[..., -self.memory_size :]
        # All steps' input projections at once; unbind (not [t]) so backward stacks the step gradients
        # once instead of filling a (T, B, 5H) zero tensor per step.
        projected = self.input_map(inputs).unbind(0)  # T x (B, 5H)
        reinstated = torch.tanh(memory).unbind(0)  # T x (B, H)
        h, c, gate = state
        resets = starts.any(dim=1).tolist()  # one sync; mask only at the steps where a trial starts
        outputs = []
        for t in range(x.shape[0]):
            if resets[t]:
                keep = (~starts[t]).unsqueeze(-1).to(x.dtype)  # (B, 1): 0 resets the memory of a new trial
                h, c = h * keep, c * keep
            gates = torch.addmm(projected[t], h, self.hidden_map.weight.T)  # (B, 5H)
            sigmoid_part, tanh_part = gates.split([4 * H, H], dim=1)
            i, f, o, r = torch.sigmoid(sigmoid_part).chunk(4, dim=-1)
            g = torch.tanh(tanh_part)
            c = torch.addcmul(torch.addcmul(f * c, i, g), r, reinstated[t])  # f*c + i*g + r*tanh(m)
            h = o * torch.tanh(c)
            gate = r
            outputs.append(h)
        return torch.stack(outputs), EpLSTMState(h, c, gate)


ClearPolicy = Literal["never", "trial", "eval"]


class EpisodicMemory:
    """Step-by-step driver of a store for one vector of envs (the trainer's or ``predict``'s).

    Each step, before the policy acts (:meth:`step`): write the pending ``(key, value)`` of every env
    whose previous step ended an episode (``write_at="episode"``, read from the ``episode_start`` flag
    in the observation) or a trial (a trial start); with ``clear="trial"`` empty the stores of envs
    starting a trial; then look up the current queries. After the policy acts, :meth:`remember` keeps
    this step's key and value as the pending write.
    """

    def __init__(
        self,
        store: EpisodicStore,
        *,
        num_envs: int,
        episode_start_index: int,
        write_at: Literal["episode", "trial"] = "episode",
        clear: ClearPolicy = "never",
    ) -> None:
        if not store.shared and store.num_stores != num_envs:
            raise ValueError(f"a store with {store.num_stores} per-env stores cannot serve {num_envs} envs")
        self.store, self.num_envs = store, num_envs
        self.episode_start_index, self.write_at, self.clear_policy = episode_start_index, write_at, clear
        device = store.device
        self._pending_key = torch.zeros(num_envs, store.key_size, device=device)
        self._pending_value = torch.zeros(num_envs, store.value_size, device=device)
        self._pending_task = torch.zeros(num_envs, dtype=torch.long, device=device)
        self._has_pending = torch.zeros(num_envs, dtype=torch.bool, device=device)
        self.task_ids = torch.zeros(num_envs, dtype=torch.long, device=device)
        """Task of each env's current trial (set by the trainer; only used to tag entries and score hits)."""
        self._hits, self._recalls = 0, 0
        self._gates: list[float] = []

    def step(self, obs: torch.Tensor, trial_starts: torch.Tensor, queries: torch.Tensor) -> Recall:
        """The recall for the step whose observation is ``obs (B, D)``, as ``(1, B, k, ...)``.

        First the writes and clears that are due before it, then the lookup of ``queries (B, K)``.
        """
        self._before_step(obs, trial_starts)
        recall = self.store.lookup(queries)
        nearest = self.store.nearest_task_ids(recall)
        found = nearest >= 0
        self._hits += int((nearest[found] == self.task_ids[found]).sum())
        self._recalls += int(found.sum())
        return Recall(*(x.unsqueeze(0) for x in recall))  # (B, k, ...) -> (1, B, k, ...)

    def _before_step(self, obs: torch.Tensor, trial_starts: torch.Tensor) -> None:
        due = self._has_pending & trial_starts
        if self.write_at == "episode":
            due |= self._has_pending & (obs[:, self.episode_start_index] > 0.5)
        if self.clear_policy == "trial" and bool(trial_starts.any()):
            due &= ~trial_starts  # the store is about to be emptied: nothing to keep
        rows = torch.nonzero(due).flatten()
        if rows.numel():
            self.store.write(self._pending_key[rows], self._pending_value[rows], rows, self._pending_task[rows])
            self._has_pending[rows] = False
        if self.clear_policy == "trial" and bool(trial_starts.any()):
            self._clear_rows(torch.nonzero(trial_starts).flatten())

    def _clear_rows(self, rows: torch.Tensor) -> None:
        if self.store.num_stores > 1:
            self.store.clear(rows)
        else:  # shared store: forget only what these envs wrote
            self.store.forget(torch.isin(self.store.owners, rows) & (self.store.last_used >= 0))

    def remember(self, keys: torch.Tensor, values: torch.Tensor, gate: torch.Tensor | None = None) -> None:
        """This step's ``keys (B, K)`` and ``values (B, V)``: written once the episode (or trial) turns out to end.

        ``gate`` (the reinstatement gate, if the core has one) only feeds :meth:`pop_stats`.
        """
        self._pending_key.copy_(keys)
        self._pending_value.copy_(values)
        self._pending_task.copy_(self.task_ids)
        self._has_pending[:] = True
        if gate is not None:
            self._gates.append(float(gate.mean()))

    def pop_stats(self) -> dict[str, float]:
        """Store size, hit rate and mean gate since the last call.

        The hit rate is the fraction of recalls whose nearest entry belongs to the env's current task.
        """
        stats = {
            "episodic_store_size": float(self.store.sizes.float().mean()),
            "episodic_hit_rate": self._hits / self._recalls if self._recalls else float("nan"),
            "episodic_gate": sum(self._gates) / len(self._gates) if self._gates else float("nan"),
        }
        self._hits = self._recalls = 0
        self._gates = []
        return stats


__all__ = [
    "EpLSTMCore",
    "EpLSTMState",
    "EpisodicMemory",
    "EpisodicStore",
    "Recall",
    "kernel_read",
]
