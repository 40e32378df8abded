"""Rewards for grounding a target in a screen by a box (paper guig1), on axis-aligned boxes.

A box is (x1, y1, x2, y2) with x1 <= x2, y1 <= y2 in pixels (1-D spans: y1 = y2 = 0, H = 1). For a
prediction p and the target box g on a W x H screen:

    R_hit = 1 if the centre of p lies inside g, else 0
    R_IoU = |p n g| / |p u g|
    R_box = 4 / (1/s_x1 + 1/s_y1 + 1/s_x2 + 1/s_y2),   s_x1 = 1 - |p_x1 - g_x1| / W, s_y1 = 1 - |p_y1 - g_y1| / H, ...

R_box is the harmonic mean of per-coordinate closeness: it is 1 only for the exact box and, unlike
IoU, falls when a box grows past the target (IoU-style rewards let a policy trade precision for
size, which GUI-G1 identifies as reward hacking). GUI-G1's reward, with the weights of its released
code: R = R_hit + 0.25 R_IoU + 0.125 R_box (`gui_g1_reward`). For 1-D spans the y terms are 1.
"""

from __future__ import annotations

import torch

__all__ = ["hit", "iou", "box_closeness", "gui_g1_reward"]


def _split(b: torch.Tensor):
    return b[..., 0], b[..., 1], b[..., 2], b[..., 3]


def hit(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """[...] 1.0 where the centre of pred [..., 4] lies inside target [..., 4] (edges included)."""
    px1, py1, px2, py2 = _split(pred)
    gx1, gy1, gx2, gy2 = _split(target)
    cx, cy = (px1 + px2) / 2, (py1 + py2) / 2
    return ((cx >= gx1) & (cx <= gx2) & (cy >= gy1) & (cy <= gy2)).float()


def iou(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-9) -> torch.Tensor:
    """[...] intersection over union; a degenerate axis (y1 = y2 for spans) counts as length 1."""
    px1, py1, px2, py2 = _split(pred)
    gx1, gy1, gx2, gy2 = _split(target)
    span = lambda a, b: torch.where(b > a, b - a, torch.ones_like(a))  # noqa: E731
    ix = (torch.minimum(px2, gx2) - torch.maximum(px1, gx1)).clamp_min(0)
    iy = torch.where((py2 == py1) & (gy2 == gy1) & (py1 == gy1), torch.ones_like(ix),
                     (torch.minimum(py2, gy2) - torch.maximum(py1, gy1)).clamp_min(0))
    inter = ix * iy
    union = span(px1, px2) * span(py1, py2) + span(gx1, gx2) * span(gy1, gy2) - inter
    return inter / (union + eps)


def box_closeness(pred: torch.Tensor, target: torch.Tensor, width: float, height: float) -> torch.Tensor:
    """[...] harmonic mean of the four per-coordinate closeness terms (module docstring)."""
    s = torch.stack([1 - (pred[..., i] - target[..., i]).abs() / (width if i % 2 == 0 else height)
                     for i in range(4)], -1).clamp_min(1e-6)
    return 4 / (1 / s).sum(-1)


def gui_g1_reward(pred: torch.Tensor, target: torch.Tensor, width: float, height: float,
                  w_iou: float = 0.25, w_box: float = 0.125) -> torch.Tensor:
    """R_hit + w_iou R_IoU + w_box R_box (GUI-G1's released weights by default)."""
    return hit(pred, target) + w_iou * iou(pred, target) + w_box * box_closeness(pred, target, width, height)
