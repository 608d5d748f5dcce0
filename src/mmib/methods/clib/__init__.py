"""CLIB (ICLR 2026), the Calibrated Information Bottleneck.

- :mod:`.config`: its params (``alpha``, ``beta``, ``model``, ``warmup``, ``calibrate``); pydantic only.
- :mod:`.defaults`: the library's defaults, equal to the committed params.yaml.
- :mod:`.losses`: Eq. 3-11 as pure functions; :mod:`.objectives`: Eq. 2 and Eq. 5 as weighted terms.
- :mod:`.network`: encoders, fusion, critics, decoders, projections and heads (Fig. 1).
- :mod:`.estimator`: :class:`~mmib.methods.clib.estimator.CLIB`, the scikit-learn style estimator.
- :mod:`.seed_batch`, :mod:`.seed_batch_calibration`: its warm-up and calibration for R seeds as one stacked
  model; :mod:`.stacked` (the stacked layers), :mod:`.stacked_forward` (forward pass and losses),
  :mod:`.stacked_losses` (the loss terms per seed).
- :mod:`.device_kmeans`: its per-epoch K-Means in torch on the training device, R seeds per call.

Nothing is imported here: :mod:`mmib.config` reads :mod:`.config` without loading torch.
"""
