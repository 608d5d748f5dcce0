"""OMIB (ICML 2025), the supervised reference ceiling: Optimal Multi-modal Information Bottleneck.

- :mod:`.config`: its params (params.yaml's ``omib:`` section); pydantic only.
- :mod:`.losses`: its terms and the bound M_u as pure functions.
- :mod:`.network`: encoders, VAEs, the cross-attention fusion and the heads.
- :mod:`.estimator`: :class:`~mmib.methods.omib.estimator.OMIB` and the stratified split.

Nothing is imported here: :mod:`mmib.config` reads :mod:`.config` without loading torch.
"""
