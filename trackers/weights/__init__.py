"""Weights files, one idea per module.

* :mod:`~trackers.weights.checkpoint`: our checkpoint format (saving, reading, checks);
* :mod:`~trackers.weights.foreign`: other projects' layouts (siamfc-pytorch, DaSiamRPN,
  pysot) mapped onto our networks;
* :mod:`~trackers.weights.loading`: a file of either kind into a network, or the bundled
  default, or random weights said out loud.

Devices are :mod:`trackers.devices`.
"""
