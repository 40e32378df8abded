"""The vLLM engine's per-request seeds (checked on CPU; the engine itself needs a GPU)."""

from rlx.rollout.vllm import request_seeds


def test_every_sample_of_every_prompt_gets_its_own_seed():
    """vLLM gives sample j of a request seed + j: with seeds 0, 1, 2, ... prompt i+1's sample j reused
    prompt i's sample j+1 seed (B + n - 1 distinct seeds for B x n samples)."""
    for seed, prompts, n in ((0, 4, 8), (7, 16, 8), (123, 3, 1)):
        seeds = request_seeds(seed, prompts, n)
        per_sample = [s + j for s in seeds for j in range(n)]
        assert len(set(per_sample)) == prompts * n
        assert all(0 <= s + n - 1 < 2**31 - 1 for s in seeds)
    assert request_seeds(0, 3, 8) == [0, 8, 16]
