"""medft: full training or fine tuning? A Caffe-faithful reproduction of Tajbakhsh et al. 2016.

Stages (each a ``medft <stage>`` subcommand and a module of this package):
``gen`` (models/solvers), ``prep`` (LMDBs), ``pretrain``, ``train``, ``predict``,
``score`` and ``report``.
"""

__version__ = "0.1.0"
