"""DR-RL: an RL agent picks the rank of a low-rank attention factorisation per input and layer.  Paper: drrl

What is approximated. For head h of a layer on a sequence of L tokens, the pre-softmax scores
S = Q K^T / sqrt(d_h) [L, L] (Q, K after RoPE) are replaced by their rank-r truncated SVD
S_r = U_r diag(sigma_1..sigma_r) V_r^T, and the head outputs softmax(causal(S_r)) V (`truncate`).
We factor S, not the weights W_q, W_k, because (i) the rank is meant to follow the input, and a
weight SVD is one fixed matrix per layer; (ii) RoPE sits between the projections and the product,
so W_q W_k^T is not the score matrix; (iii) Eckart-Young then gives the error of every rank exactly
from one spectrum, so moving from rank r to r' needs no new decomposition (`tail_error`):

    ||S - S_r||_2 = sigma_{r+1},        ||S - S_r||_F = (sum_{i>r} sigma_i^2)^{1/2}

Fidelity is the mean row KL(softmax(S) || softmax(S_r)) over the visible (causal) entries
(`attention_kl`). A row whose logits move by d has KL <= max(d) - min(d) <= sqrt(2) ||d||_2, and by
Cauchy-Schwarz over the L rows (`kl_bound`)

    mean_i KL_i <= sqrt(2 / L) ||S - S_r||_F.

Online updates. Appending a token adds one row and one column E to S (in a causal model the old
block does not change). Against the zero-padded old truncation the two errors have disjoint
supports, so (`appended_tail_bound`)  tail_F(S_{t+1}, r) <= (tail_F(S_t, r)^2 + ||E||_F^2)^{1/2},
and Weyl's inequality bounds every new singular value, |sigma_i(S + E) - sigma_i(S)| <= ||E||_2
(`weyl_interval`): a rank can be re-chosen from the old spectrum and the O(L d_h) new entries.

Compute. The factored score kernel costs 2 L^2 r' FLOPs, r' = min(r, L, d_h), against 2 L^2 d_h
for dense Q K^T; making the factors costs about 4 L d_h r' more (`score_flops`). The reward's
compute term is the kept fraction of the exact rank, c = r' / min(L, d_h) (`compute_fraction`).

The agent. Per (sequence, layer) a small policy over a discrete rank set is trained by
REINFORCE (advantage = R standardised within the layer's batch) on R = -mean KL(r) - lambda c(r)
(`rank_reward`). The candidates share one scoring MLP over per-rank features (the rank's KL bound and
relative tail, its compute fraction, L / d_h, the layer), so a lesson about one rank's bound transfers.
Layers are decided in order on the running low-rank model, so each sees its predecessors' choices.
Baselines: static ranks; `bound_greedy` (the cheapest rank whose `kl_bound` is <= eps: spectrum
only); `oracle` (argmax of the true R: evaluates every candidate rank).

From the paper: input- and layer-dependent ranks chosen by RL, reward = fidelity - lambda * compute,
SVD factorisation, perturbation bounds for rank changes without a new decomposition.
Departures: an MLP contextual bandit per layer instead of a Transformer policy; a FLOPs model, no
latency; S is computed densely and then truncated, so nothing here runs faster - it measures what a
rank choice does to attention and to answers. The SVD of S mixes rows, so position i's scores then
depend on later tokens of the same sequence: valid when every step recomputes the whole sequence (as
`greedy_generate` does), not with a KV cache. The paper's regime (L > 4096) is out of reach: the
repo's model sees L <= ~16 < d_h = 32, where S has rank <= L and factoring saves little.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from pydantic import Field, field_validator
from torch import nn
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

from rlx.config import Section

__all__ = ["DrrlConfig", "truncate", "tail_error", "kl_bound", "appended_tail_bound", "weyl_interval",
           "attention_kl", "score_flops", "compute_fraction", "rank_reward", "LayerScores", "RankStep",
           "lowrank_forward", "greedy_generate", "static", "bound_greedy", "oracle", "rank_features",
           "RankPolicy", "PolicySelector", "train_rank_policy"]


class DrrlConfig(Section):
    """DR-RL rank selector (paper drrl)."""

    ranks: tuple[int, ...] = Field((1, 2, 3, 4, 5, 6, 8, 32), description="candidate ranks, ascending; "
                                   "a rank >= min(L, d_h) is exact")
    lam: float = Field(0.3, ge=0, le=100, description="lambda: weight of the compute term in the reward")
    steps: int = Field(400, ge=1, le=1_000_000, description="policy updates")
    batch_size: int = Field(64, ge=2, le=65536, description="sequences per update")
    lr: float = Field(0.02, gt=0, le=1, description="Adam learning rate of the policy")
    hidden: int = Field(32, ge=1, le=4096, description="policy MLP width")
    entropy: float = Field(0.01, ge=0, le=10, description="entropy bonus weight")
    seed: int = Field(0, ge=0, description="policy init, action sampling and batch order")

    @field_validator("ranks")
    @classmethod
    def _ascending(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or min(v) < 1 or list(v) != sorted(set(v)):
            raise ValueError(f"ranks ({v}) must be distinct positive integers in ascending order")
        return v


# ---------------------------------------------------------------------------------------------
# math: pure functions
# ---------------------------------------------------------------------------------------------
def truncate(U: torch.Tensor, s: torch.Tensor, Vh: torch.Tensor, ranks: torch.Tensor | int) -> torch.Tensor:
    """S_r = U diag(s * 1[i < r]) Vh from an SVD [..., L, n], [..., n], [..., n, L]; `ranks` broadcasts
    over the leading axes. Eckart-Young: the best rank-r approximation in Frobenius and spectral norm."""
    r = torch.as_tensor(ranks, device=s.device)
    keep = torch.arange(s.shape[-1], device=s.device) < r[..., None]
    return (U * (s * keep)[..., None, :]) @ Vh


def tail_error(s: torch.Tensor, ranks: torch.Tensor | int, norm: str = "fro") -> torch.Tensor:
    """||S - S_r|| from the singular values s [..., n] (descending), Eckart-Young (paper drrl):
    "fro": (sum_{i>r} s_i^2)^{1/2};  "spectral": s_{r+1} (0 when r >= n)."""
    r = torch.as_tensor(ranks, device=s.device)
    tail = torch.arange(s.shape[-1], device=s.device) >= r[..., None]
    if norm == "fro":
        return ((s * tail) ** 2).sum(-1).sqrt()
    if norm == "spectral":
        return (s * tail).amax(-1)
    raise ValueError(f"norm = {norm!r}: expected 'fro' or 'spectral'")


def kl_bound(s: torch.Tensor, ranks: torch.Tensor | int, length: int) -> torch.Tensor:
    """Bound on the mean row KL(softmax(S) || softmax(S_r)) of an [L, L] score matrix, masked or not:
    sqrt(2 / L) ||S - S_r||_F  (each row: KL <= max d - min d <= sqrt(2) ||d||_2). Paper: drrl."""
    return math.sqrt(2.0 / length) * tail_error(s, ranks, "fro")


def appended_tail_bound(tail_old: torch.Tensor, e_fro: torch.Tensor) -> torch.Tensor:
    """tail_F(S_{t+1}, r) <= (tail_F(S_t, r)^2 + ||E||_F^2)^{1/2} when S_{t+1} is S_t plus one new row
    and column E (disjoint supports against the padded old truncation). Paper: drrl (online bound)."""
    return (tail_old**2 + e_fro**2).sqrt()


def weyl_interval(s: torch.Tensor, e_norm: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
    """Weyl: sigma_i(S + E) lies in [sigma_i(S) - ||E||_2, sigma_i(S) + ||E||_2] (lower end >= 0)."""
    e = torch.as_tensor(e_norm, dtype=s.dtype, device=s.device)
    if e.dim():
        e = e[..., None]
    return (s - e).clamp_min(0.0), s + e


def attention_kl(S: torch.Tensor, S_r: torch.Tensor) -> torch.Tensor:
    """Per-row KL(softmax(S) || softmax(S_r)) [..., L] under the causal mask (row i sees keys <= i)."""
    L = S.shape[-1]
    causal = torch.ones(L, L, dtype=torch.bool, device=S.device).tril()
    lp = torch.log_softmax(S.masked_fill(~causal, -math.inf), -1)
    lq = torch.log_softmax(S_r.masked_fill(~causal, -math.inf), -1)
    return torch.where(causal, lp.exp() * (lp - lq), 0.0).sum(-1)


def score_flops(length: int, head_dim: int, rank: int | None, factors: bool = False) -> int:
    """FLOPs of one head's score matrix: dense 2 L^2 d_h (rank None); rank r: 2 L^2 r' with
    r' = min(r, L, d_h), plus 4 L d_h r' for making the factors when `factors`. Paper: drrl."""
    if rank is None:
        return 2 * length * length * head_dim
    r = min(rank, length, head_dim)
    return 2 * length * length * r + (4 * length * head_dim * r if factors else 0)


def compute_fraction(length: int, head_dim: int, ranks: torch.Tensor) -> torch.Tensor:
    """c = min(r, L, d_h) / min(L, d_h): the kept fraction of the exact rank (the reward's compute term)."""
    exact = min(length, head_dim)
    return ranks.clamp(max=exact).to(torch.float32) / exact


def rank_reward(kl: torch.Tensor, frac: torch.Tensor, lam: float) -> torch.Tensor:
    """R = -KL - lambda * c (paper drrl: attention fidelity against compute)."""
    return -kl - lam * frac


# ---------------------------------------------------------------------------------------------
# a Llama-style model with low-rank scores
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LayerScores:
    """What a selector sees at one layer: the scores and their SVD."""

    layer: int
    n_layers: int
    scores: torch.Tensor  # [B, H, L, L] S = Q K^T / sqrt(d_h)
    U: torch.Tensor  # [B, H, L, L]
    s: torch.Tensor  # [B, H, L] singular values, descending
    Vh: torch.Tensor  # [B, H, L, L]
    head_dim: int


@dataclass(frozen=True)
class RankStep:
    """One layer's decision for a batch."""

    layer: int
    length: int
    ranks: torch.Tensor  # [B] chosen rank (shared by the layer's heads)
    kl: torch.Tensor  # [B] mean row KL over heads and rows
    frac: torch.Tensor  # [B] compute_fraction


Selector = Callable[[LayerScores], torch.Tensor]  # -> ranks [B]


@torch.no_grad()
def lowrank_forward(model: nn.Module, ids: torch.Tensor, select: Selector | None) -> tuple[torch.Tensor, list[RankStep]]:
    """Logits [B, L, V] of a Llama-style HF causal LM on unpadded ids [B, L], each layer's scores
    truncated to the rank `select` picks (None: the exact model, no SVD)."""
    inner = model.model
    B, L = ids.shape
    h = inner.embed_tokens(ids)
    cos, sin = inner.rotary_emb(h, torch.arange(L, device=ids.device)[None].expand(B, L))
    causal = torch.ones(L, L, dtype=torch.bool, device=ids.device).tril()
    steps: list[RankStep] = []
    for i, layer in enumerate(inner.layers):
        a = layer.self_attn
        x = layer.input_layernorm(h)
        q, k, v = (p(x).view(B, L, -1, a.head_dim).transpose(1, 2) for p in (a.q_proj, a.k_proj, a.v_proj))
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        k, v = (t.repeat_interleave(a.num_key_value_groups, dim=1) for t in (k, v))
        S = (q @ k.transpose(-1, -2)) * a.scaling  # [B, H, L, L]
        scores = S
        if select is not None:
            U, s, Vh = torch.linalg.svd(S)
            ranks = select(LayerScores(i, len(inner.layers), S, U, s, Vh, a.head_dim)).to(ids.device)
            scores = truncate(U, s, Vh, ranks[:, None])
            kl = attention_kl(S, scores).mean(dim=(-1, -2))
            steps.append(RankStep(i, L, ranks, kl, compute_fraction(L, a.head_dim, ranks)))
        attn = torch.softmax(scores.masked_fill(~causal, -math.inf), -1)
        h = h + a.o_proj((attn @ v).transpose(1, 2).reshape(B, L, -1))
        h = h + layer.mlp(layer.post_attention_layernorm(h))
    return model.lm_head(inner.norm(h)), steps


@torch.no_grad()
def greedy_generate(model: nn.Module, tokenizer, prompts: list[str], select: Selector | None,
                    max_new_tokens: int = 8) -> tuple[list[str], list[RankStep]]:
    """Greedy completions, recomputing the whole sequence each step (no KV cache), so every step's
    ranks are chosen on that step's scores. Prompts are batched by token length (no padding)."""
    eos = tokenizer.eos_token_id
    encoded = [tokenizer(p)["input_ids"] for p in prompts]
    texts: list[str] = [""] * len(prompts)
    steps: list[RankStep] = []
    for n in sorted({len(e) for e in encoded}):
        rows = [i for i, e in enumerate(encoded) if len(e) == n]
        ids = torch.tensor([encoded[i] for i in rows])
        done = torch.zeros(len(rows), dtype=torch.bool)
        for _ in range(max_new_tokens):
            logits, st = lowrank_forward(model, ids, select)
            steps += st
            nxt = logits[:, -1].argmax(-1)
            ids = torch.cat([ids, nxt[:, None]], 1)
            done |= nxt == eos
            if bool(done.all()):
                break
        for j, i in enumerate(rows):
            out = ids[j, n:].tolist()
            texts[i] = tokenizer.decode(out[: out.index(eos)] if eos in out else out, skip_special_tokens=True)
    return texts, steps


# ---------------------------------------------------------------------------------------------
# selectors
# ---------------------------------------------------------------------------------------------
def static(rank: int) -> Selector:
    """The same rank everywhere."""
    return lambda ls: torch.full((ls.s.shape[0],), rank, dtype=torch.long)


def bound_greedy(ranks: tuple[int, ...], eps: float) -> Selector:
    """Cheapest candidate rank whose head-mean `kl_bound` is <= eps (the largest if none): the
    perturbation bound as a rank rule, from the spectrum alone. Paper: drrl."""
    cand = torch.tensor(ranks)

    def pick(ls: LayerScores) -> torch.Tensor:
        L = ls.s.shape[-1]
        b = kl_bound(ls.s[..., None, :], cand, L).mean(1)  # [B, R]
        ok = torch.cat([b[:, :-1] <= eps, torch.ones_like(b[:, :1], dtype=torch.bool)], 1)
        return cand[ok.int().argmax(-1)]  # first True

    return pick


def oracle(ranks: tuple[int, ...], lam: float) -> Selector:
    """argmax over candidates of the true reward R = -KL(r) - lambda c(r) (one truncation per rank)."""
    cand = torch.tensor(ranks)

    def pick(ls: LayerScores) -> torch.Tensor:
        L = ls.s.shape[-1]
        R = torch.stack([rank_reward(attention_kl(ls.scores, truncate(ls.U, ls.s, ls.Vh, r)).mean((-1, -2)),
                                     compute_fraction(L, ls.head_dim, torch.tensor(r)), lam) for r in ranks], -1)
        return cand[R.argmax(-1)]

    return pick


def rank_features(ls: LayerScores, ranks: tuple[int, ...]) -> torch.Tensor:
    """Policy input [B, R, 4 + n_layers], one row per candidate rank r: log(1e-3 + kl_bound(r)) / 5 and
    log(1e-3 + ||S - S_r||_F / ||S||_F) / 5 (head means), compute_fraction(r), L / d_h, one-hot layer."""
    s, L = ls.s, ls.s.shape[-1]
    cand = torch.tensor(ranks)
    tail = tail_error(s[..., None, :], cand, "fro")  # [B, H, R]
    bound = kl_bound(s[..., None, :], cand, L).mean(1)
    rel = (tail / s.norm(dim=-1, keepdim=True).clamp_min(1e-12)).mean(1)
    B, R = bound.shape
    ctx = torch.zeros(B, R, 1 + ls.n_layers)
    ctx[..., 0] = L / ls.head_dim
    ctx[..., 1 + ls.layer] = 1.0
    frac = compute_fraction(L, ls.head_dim, cand).expand(B, R)
    return torch.cat([torch.stack([(bound + 1e-3).log() / 5, (rel + 1e-3).log() / 5, frac], -1), ctx], -1).float()


class RankPolicy(nn.Module):
    """pi(rank | features) = softmax_r g(phi_r): one small MLP g scores every candidate rank from its
    own features (shared across ranks, so what it learns about one rank's bound carries to the others)."""

    def __init__(self, n_features: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_features, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features)[..., 0]  # [B, R] logits


class PolicySelector:
    """Selector from a RankPolicy: samples (training) or takes the argmax; logs (features, action)."""

    def __init__(self, policy: RankPolicy, ranks: tuple[int, ...], sample: bool, generator: torch.Generator | None = None):
        self.policy, self.ranks, self.sample, self.generator = policy, torch.tensor(ranks), sample, generator
        self.log: list[tuple[torch.Tensor, torch.Tensor]] = []  # per layer: features [B, F], action [B]

    def __call__(self, ls: LayerScores) -> torch.Tensor:
        f = rank_features(ls, tuple(self.ranks.tolist()))
        with torch.no_grad():
            logits = self.policy(f)
        a = torch.multinomial(logits.softmax(-1), 1, generator=self.generator)[:, 0] if self.sample else logits.argmax(-1)
        self.log.append((f, a))
        return self.ranks[a]


def train_rank_policy(model: nn.Module, batches: list[torch.Tensor], cfg: DrrlConfig) -> tuple[RankPolicy, list[float]]:
    """REINFORCE on R = -KL - lambda c per (sequence, layer); advantage (R - mean R) / std R within the
    layer's batch.
    `batches`: unpadded id tensors [B, L] (one length each), drawn in a seeded order. Paper: drrl."""
    torch.manual_seed(cfg.seed)
    n_layers = len(model.model.layers)
    policy = RankPolicy(4 + n_layers, cfg.hidden)
    opt = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    history: list[float] = []
    for _ in range(cfg.steps):
        ids = batches[int(torch.randint(len(batches), (1,), generator=gen))]
        if ids.shape[0] > cfg.batch_size:
            ids = ids[torch.randperm(ids.shape[0], generator=gen)[: cfg.batch_size]]
        sel = PolicySelector(policy, cfg.ranks, sample=True, generator=gen)
        _, steps = lowrank_forward(model, ids, sel)
        loss = torch.zeros(())
        total = 0.0
        for (f, a), st in zip(sel.log, steps):
            R = rank_reward(st.kl, st.frac, cfg.lam)
            logp = torch.log_softmax(policy(f), -1)
            ent = -(logp.exp() * logp).sum(-1)
            adv = (R - R.mean()) / (R.std(correction=0) + 1e-8)  # population std: 0 (not NaN) for one row
            loss = loss - (adv * logp.gather(1, a[:, None])[:, 0]).mean() - cfg.entropy * ent.mean()
            total += float(R.mean())
        opt.zero_grad()
        (loss / len(steps)).backward()
        opt.step()
        history.append(total / len(steps))
    return policy, history
