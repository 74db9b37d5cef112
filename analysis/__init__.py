"""Analysis of DDPG benchmark runs (work in progress)."""
