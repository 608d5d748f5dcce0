"""2-D t-SNE of fused features for Figure 5 (evaluation only)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.manifold import TSNE


def tsne_frame(snapshots: dict[str, np.ndarray], labels: np.ndarray, max_samples: int, perplexity: float,
               seed: int) -> pd.DataFrame:
    """t-SNE of each snapshot's features (e.g. end of warm-up, end of training) on the same samples.

    At most ``max_samples`` samples, drawn once with ``seed`` so every
    snapshot shows the same points; perplexity is clipped below the sample
    count (sklearn requires it). Rows: ``snapshot, order, sample, x, y, label``; ``order`` is the
    snapshot's position in ``snapshots`` (the `dvc plots` template orders its panels by it).
    """
    n = len(labels)
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, size=max_samples, replace=False)) if n > max_samples else np.arange(n)
    frames = []
    for order, (name, features) in enumerate(snapshots.items()):
        x = np.asarray(features, dtype=np.float64)[rows]
        emb = TSNE(n_components=2, perplexity=min(perplexity, (len(rows) - 1) / 3), init="pca",
                   random_state=seed).fit_transform(x)
        frames.append(pd.DataFrame({"snapshot": name, "order": order, "sample": rows, "x": emb[:, 0], "y": emb[:, 1],
                                    "label": np.asarray(labels)[rows]}))
    return pd.concat(frames, ignore_index=True)
