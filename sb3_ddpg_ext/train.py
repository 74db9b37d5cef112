"""
``python -m sb3_ddpg_ext.train``: rl-zoo3's ``train`` with every flag unchanged, after registering ``ddpg_ext``
(:class:`sb3_ddpg_ext.ddpg.DDPG`) and its Optuna sampler (see :func:`sb3_ddpg_ext.zoo.register_zoo`).

Example::

    python -m sb3_ddpg_ext.train --algo ddpg_ext --env Pendulum-v1 -conf hyperparams/ddpg.yml --seed 1
"""

from sb3_ddpg_ext.zoo import train

if __name__ == "__main__":
    train()
