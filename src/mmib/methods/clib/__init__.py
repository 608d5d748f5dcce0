"""CLIB (ICLR 2026), the Calibrated Information Bottleneck.

- :mod:`.config`: its params (``alpha``, ``beta``, ``model``, ``warmup``, ``calibrate``); pydantic only.
- :mod:`.defaults`: the library's defaults, equal to the committed params.yaml.
- :mod:`.losses`: Eq. 3-11 as pure functions; :mod:`.objectives`: Eq. 2 and Eq. 5 as weighted terms.
- :mod:`.network`: encoders, fusion, critics, decoders, projections and heads (Fig. 1).
- :mod:`.estimator`: :class:`~mmib.methods.clib.estimator.CLIB`, the scikit-learn style estimator.
- :mod:`.seed_batch`, :mod:`.stacked`, :mod:`.stacked_losses`: its warm-up for R seeds as one stacked model.
- :mod:`.device_kmeans`: its per-epoch K-Means in torch on the training device, R seeds per call.

Nothing is imported here: :mod:`mmib.config` reads :mod:`.config` without loading torch.
"""
