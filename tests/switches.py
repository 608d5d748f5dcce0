"""The quality switches at the paper's reading, for tests that build CLIB's params by hand."""

PAPER_WARMUP = {"preservation": "mine", "reconstruction_weight": 0.0, "projection_dim": 0,
                "alignment_reduction": "sum"}
PAPER_CALIBRATE = {"cold_start_clusters": "kmeans", "pseudo_clusters": "kmeans", "targets": "cluster_mean", "screening_rank": "score",
                   "screening_agreement": False,
                   "caliH_reduction": "sum", "balance_weight": 0.0, "batch_per_cluster": 0.0, "keep_ib": True,
                   "confidence": "head"}
