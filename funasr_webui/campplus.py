"""FunASR's CAM++ speaker model on the Paraformer path: where its folder is, and one set of speaker labels over
the pieces a long file is transcribed in (FunASR clusters each call on its own, so piece 2's speaker 0 need not be
piece 1's)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import models
from .speakers import relabel_by_appearance
from .transcript import Segment

MERGE_SIMILARITY = 0.78  # FunASR's own threshold (ClusterBackend merge_thr) for two CAM++ centroids being one voice


def campplus_dir(models_dir: Path) -> Path | None:
    """The CAM++ folder `./run.sh download` fetched, when it is there (optional: without it the embedded speaker
    model labels Paraformer's sentences too)."""
    d = models.CAMPP.path(models_dir)
    weights = any(d.glob("*.pt")) or any(d.glob("*.bin")) if d.is_dir() else False
    return d if (d / "config.yaml").is_file() and weights else None


def unify(pieces: list[tuple[list[Segment], np.ndarray | None]], speakers: int) -> list[Segment]:
    """Segments of every piece with one labelling ("S1", "S2", ... in order of first appearance). Each piece's
    segments carry FunASR's local speaker id as `speaker` ("0", "1", ...), and its speakers' centroids (row = id)."""
    rows, owners = [], []
    for p, (_, centers) in enumerate(pieces):
        if centers is not None:
            rows += list(np.asarray(centers, dtype=np.float64))
            owners += [(p, str(k)) for k in range(len(centers))]
    glob: dict[tuple[int, str], int] = {}
    if len(pieces) > 1 and len(rows) > 1:
        from sklearn.cluster import AgglomerativeClustering

        if speakers:
            model = AgglomerativeClustering(n_clusters=min(speakers, len(rows)), metric="cosine", linkage="average")
        else:
            model = AgglomerativeClustering(
                n_clusters=None, distance_threshold=1 - MERGE_SIMILARITY, metric="cosine", linkage="average"
            )
        glob = dict(zip(owners, (int(x) for x in model.fit_predict(np.stack(rows))), strict=True))
    out = []
    for p, (segments, _) in enumerate(pieces):
        for s in segments:
            key = glob.get((p, s.speaker), s.speaker) if s.speaker else ""
            out.append(Segment(s.start, s.end, s.text, f"#{key}" if key != "" else "", s.tags, s.words))
    return relabel_by_appearance(out)
