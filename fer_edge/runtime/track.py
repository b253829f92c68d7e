"""IoU tracking + exponential moving average of probabilities, so labels do not flicker and
detection can be skipped on some frames while tracked boxes persist."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fer_edge.runtime.boxes import Box, iou


@dataclass
class Track:
    id: int
    box: Box
    probs: np.ndarray | None = None
    missed: int = 0  # consecutive frames in which the face was not confirmed
    hits: int = 0  # frames in which it was


@dataclass
class Tracker:
    alpha: float = 0.5  # EMA weight of the newest probabilities (1.0 = no smoothing)
    iou_threshold: float = 0.3
    max_missed: int = 5  # detection frames a track may go unseen before it is dropped
    max_coast: int = 3  # frames an established track (>= min_hits) is still reported while unseen
    min_hits: int = 3
    tracks: list[Track] = field(default_factory=list)
    _next_id: int = 1

    def match(self, boxes: list[Box]) -> list[Track]:
        """Assign each detected box to a track (greedy by IoU), creating/ageing tracks."""
        pairs = sorted(((iou(t.box, b), ti, bi) for ti, t in enumerate(self.tracks) for bi, b in enumerate(boxes)),
                       reverse=True)
        used_t, used_b, assigned = set(), set(), {}
        for score, ti, bi in pairs:
            if score < self.iou_threshold or ti in used_t or bi in used_b:
                continue
            used_t.add(ti), used_b.add(bi)
            assigned[bi] = self.tracks[ti]
        for ti, t in enumerate(self.tracks):
            if ti not in used_t:
                t.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        out = []
        for bi, b in enumerate(boxes):
            t = assigned.get(bi)
            if t is None:
                t = Track(self._next_id, b)
                self._next_id += 1
                self.tracks.append(t)
            t.box, t.missed, t.hits = b, 0, t.hits + 1
            out.append(t)
        return out

    def confirm(self, track: Track, box: Box | None) -> None:
        """A frame without full detection: the face re-found near its box, or not (then it coasts)."""
        if box is None:
            track.missed += 1
        else:
            track.box, track.missed, track.hits = box, 0, track.hits + 1

    def _coasts(self, t: Track) -> bool:
        return 0 < t.missed <= self.max_coast and t.hits >= self.min_hits

    def coasting(self) -> list[Track]:
        """Established tracks unseen for a few frames: still reported where they were (a face the
        detector lost for a frame or two, e.g. while it turns, is still there)."""
        return [t for t in self.tracks if self._coasts(t)]

    def live(self) -> list[Track]:
        """Tracks seen on the last frame, or coasting: the ones to follow when detection is skipped."""
        return [t for t in self.tracks if t.missed == 0 or self._coasts(t)]

    def smooth(self, track: Track, probs: np.ndarray) -> np.ndarray:
        track.probs = probs if track.probs is None else self.alpha * probs + (1 - self.alpha) * track.probs
        return track.probs
