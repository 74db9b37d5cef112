"""
``python -m sb3_ddpg_ext.enjoy``: rl-zoo3's ``enjoy`` with every flag unchanged, after registering ``ddpg_ext``
(see :func:`sb3_ddpg_ext.zoo.register_zoo`), so models trained with any extension load.

Example::

    python -m sb3_ddpg_ext.enjoy --algo ddpg_ext --env Pendulum-v1 -f logs/ --exp-id 1 -n 1000 --no-render
"""

from sb3_ddpg_ext.zoo import enjoy

if __name__ == "__main__":
    enjoy()
