"""Which prompts and rollouts to train on: dynamic sampling (dapo), down-sampling (d3s)."""

from rlx.sampling.batch import concat_rollouts, take_rows
from rlx.sampling.downsample import D3SConfig, d3s_keep_fraction, d3s_sample_select, d3s_token_select, max_variance_subset
from rlx.sampling.dynamic import FillResult, fill_groups, group_rows, informative_groups

__all__ = [
    "take_rows", "concat_rollouts",
    "informative_groups", "group_rows", "FillResult", "fill_groups",
    "D3SConfig", "d3s_keep_fraction", "d3s_sample_select", "d3s_token_select", "max_variance_subset",
]
