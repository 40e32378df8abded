"""Multi-turn tool-using agents trained with RL (paper asearcher): search environment, rollouts, trainer."""
