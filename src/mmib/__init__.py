"""mmib: trusted multi-modal clustering with information bottlenecks.

CLIB (ICLR 2026) is the main method; MSDIB (AAAI 2025), OMIB (ICML 2025) and
classical baselines run through the same pipeline. See README.md.
"""

__version__ = "0.1.0"
