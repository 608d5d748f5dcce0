"""MSDIB (AAAI 2025), the Multi-aspect Self-guided Deep Information Bottleneck.

- :mod:`.config`: its params (params.yaml's ``msdib:`` section); pydantic only.
- :mod:`.losses`: Eq. 1's terms as pure functions, and Eq. 1 itself as weighted terms.
- :mod:`.network`: encoders, fusion and the DDC heads.
- :mod:`.estimator`: :class:`~mmib.methods.msdib.estimator.MSDIB`.

Nothing is imported here: :mod:`mmib.config` reads :mod:`.config` without loading torch.
"""
