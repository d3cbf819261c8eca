"""The field's evaluation toolkits, driving siamtrack's trackers as real clients.

* :mod:`trackers.toolkits.got10k_adapter`: got10k's ``Tracker`` interface (GOT-10k, OTB
  experiments of the ``got10k`` package).
* :mod:`trackers.toolkits.trax_server`: a TraX server, the protocol the VOT toolkit
  speaks to trackers (``siamtrack trax``).

Neither toolkit is a dependency of siamtrack: each module imports its toolkit only
when it is used and says how to install it when it is missing. Both toolkits pull in
packages that clash with the app's (see shared/docs/ECOSYSTEM.md section 1), so they
belong in a venv or a ``--target`` folder of their own.
"""
