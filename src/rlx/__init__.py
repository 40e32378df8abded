"""rlx: reinforcement-learning methods of 51 papers in one practical, tested toolkit.

Rooms (see docs/DESIGN.md): tasks, rewards, models, rollout, objectives, sampling, train,
control, robust, quant, evaluation, distributed. Import what you need from the room; the
package root stays light so that `import rlx` does not pull in torch.
"""

__version__ = "0.1.0"
