"""Explanations on the host: Grad-CAM (Selvaraju et al. 2017) for every architecture, CAM (Zhou et
al. 2016) for GAP-headed ones, and the checks that show the maps mean something:
a randomised-weights sanity check (Adebayo et al. 2018), a deletion curve against random
deletion, and the agreement of the edge file's CAM with Grad-CAM from the Keras model.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from fer_edge.errors import UsageError

_SKIP = ("Dropout", "MaxPooling2D", "AveragePooling2D", "SpatialDropout2D")


def feature_layers(model) -> list:
    """Top-level layers with a 4-D output in the outer graph (conv blocks, nested backbones)."""
    out = []
    for layer in model.layers:
        if not layer._inbound_nodes:
            continue
        t = layer._inbound_nodes[0].outputs[0]
        if len(t.shape) == 4 and layer.__class__.__name__ not in ("InputLayer",) and layer.name != "pixels":
            out.append(layer)
    return out


def last_conv_layer(model, name: str | None = None):
    """The layer Grad-CAM explains: `name`, or the last 4-D layer that is not a pooling/dropout."""
    layers = feature_layers(model)
    if name:
        for layer in layers:
            if layer.name == name:
                return layer
        raise UsageError(f"--layer {name}: not a convolutional layer of {model.name}; "
                         f"choose one of: {', '.join(l.name for l in layers[-6:])}.")
    cands = [l for l in layers if l.__class__.__name__ not in _SKIP and not l.name.startswith(("rescale", "gray_to_rgb", "imagenet_norm"))]
    if not cands:
        raise UsageError(f"{model.name} has no convolutional layer to explain with Grad-CAM.")
    return cands[-1]


class GradCAM:
    def __init__(self, model, layer: str | None = None):
        import keras

        self.model = model
        self.layer = last_conv_layer(model, layer)
        feat = self.layer._inbound_nodes[0].outputs[0]
        self.grad_model = keras.Model(model.inputs[0], [feat, model.outputs[0]])

    def __call__(self, x: np.ndarray, classes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """x (N, H, W, C) pixels 0..255 -> (maps (N, h, w) in 0..1, probs (N, K))."""
        import tensorflow as tf

        xt = tf.constant(np.asarray(x, np.float32))
        with tf.GradientTape() as tape:
            feats, probs = self.grad_model(xt, training=False)
            cls = probs.numpy().argmax(1) if classes is None else np.asarray(classes)
            score = tf.reduce_sum(tf.gather(probs, cls, axis=1, batch_dims=1))
        grads = tape.gradient(score, feats).numpy()
        feats = feats.numpy()
        from fer_edge.runtime.cam import weighted_maps

        return weighted_maps(feats, grads.mean(axis=(1, 2))), probs.numpy()  # weights: pooled gradients


class HostCAM:
    """CAM from the Keras model (GAP-headed architectures): features @ classifier weights."""

    def __init__(self, model):
        from fer_edge.export.cam_head import cam_model

        self.two, info = cam_model(model)
        self.weights = np.asarray(info["weights"], np.float32)

    def __call__(self, x, classes=None):
        from fer_edge.runtime.cam import cam_maps

        probs, feats = (np.asarray(t) for t in self.two(np.asarray(x, np.float32), training=False))
        cls = probs.argmax(1) if classes is None else np.asarray(classes)
        return cam_maps(feats, self.weights, cls), probs


def make_explainer(model, method: str = "gradcam", layer: str | None = None):
    if method == "gradcam":
        return GradCAM(model, layer)
    if method == "cam":
        return HostCAM(model)
    raise UsageError(f"unknown method '{method}'. Choose gradcam or cam.")


def upsample(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.stack([cv2.resize(m, (size[1], size[0]), interpolation=cv2.INTER_CUBIC) for m in maps]).clip(0, 1)


def overlay(face_gray: np.ndarray, cam: np.ndarray, size: int = 144) -> np.ndarray:
    """A face enlarged to size x size with its map blended in: the runtime's one heatmap blend."""
    from fer_edge.runtime.cam import blend_heatmap

    face = cv2.cvtColor(cv2.resize(face_gray, (size, size), interpolation=cv2.INTER_CUBIC), cv2.COLOR_GRAY2BGR)
    return blend_heatmap(face, (0, 0, size, size), cam)


def _map_stats(m: np.ndarray) -> dict:
    h, w = m.shape
    total = float(m.sum())
    ys, xs = np.mgrid[0:h, 0:w]
    cy = float((ys * m).sum() / total / max(h - 1, 1)) if total > 0 else 0.5
    cx = float((xs * m).sum() / total / max(w - 1, 1)) if total > 0 else 0.5
    return {"mean": round(float(m.mean()), 4), "max": round(float(m.max()), 4),
            "centroid_xy": [round(cx, 3), round(cy, 3)], "shape": [h, w]}


def explain_images(model_path: str | Path, images: list[str], method: str = "gradcam", target: str = "top",
                   top_k: int = 3, output: str | Path | None = None, layer: str | None = None,
                   margin: float | None = None, overwrite: bool = False) -> list[dict]:
    """Explain every face of every image; writes one composed PNG per image to `output` (the output policy
    of `predict`: unique names, never an input, existing files only with `overwrite`; an unreadable image
    is a record with an "error", not the end of the batch)."""
    from fer_edge.errors import FerEdgeError
    from fer_edge.outputs import plan_annotated_outputs
    from fer_edge.runtime.images import collect_images, read_image, write_image_atomic
    from fer_edge.runtime.recognizer import EmotionRecognizer
    from fer_edge.training.keras_backend import KerasBackend

    kb = KerasBackend.load(Path(model_path), framework="tensorflow")  # Grad-CAM uses its GradientTape
    spec = kb.spec
    rec = EmotionRecognizer(kb, margin=margin)  # the runtime's detect -> crop -> preprocess path, on Keras
    explainer = make_explainer(kb.model, method, layer)
    if target != "top" and target not in spec.labels:
        from fer_edge.errors import unknown

        raise unknown("target class", target, ["top", *spec.labels])
    files = collect_images(images)
    targets = plan_annotated_outputs(files, output, overwrite, suffix=f"_{method}.png")
    records = []
    for f, target_png in zip(files, targets):
        try:
            img = read_image(f)
        except FerEdgeError as exc:
            records.append({"image": str(f), "error": str(exc), "faces": []})
            continue
        gray = rec.gray(img)
        boxes = rec.detector.detect(gray)
        whole = (0, 0, gray.shape[1], gray.shape[0])
        if not boxes and max(gray.shape) <= 100:  # already a face crop (e.g. a FER2013 image)
            boxes = [whole]
        layer = getattr(getattr(explainer, "layer", None), "name", "gap_input")
        record = {"image": str(f), "method": method, "layer": layer, "faces": []}
        if not boxes:
            record["note"] = "no face found"
            records.append(record)
            continue
        batch = rec.face_batch(gray, boxes, [0.0 if b == whole else rec.margin for b in boxes])
        probs = kb.predict(batch)
        tiles = []
        for i, b in enumerate(boxes):
            order = np.argsort(-probs[i])
            classes = [spec.labels.index(target)] if target != "top" else list(order[:top_k])
            maps, _ = explainer(np.repeat(batch[i:i + 1], len(classes), 0), np.array(classes))
            face = {"box": [int(v) for v in b], "explained": []}
            row = [cv2.cvtColor(cv2.resize(batch[i, :, :, 0], (144, 144), interpolation=cv2.INTER_CUBIC), cv2.COLOR_GRAY2BGR)]
            for c, m in zip(classes, maps):
                tile = overlay(batch[i, :, :, 0], m)
                cv2.putText(tile, f"{spec.labels[c]} {probs[i, c]:.2f}", (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                            (255, 255, 255), 1, cv2.LINE_AA)
                row.append(tile)
                face["explained"].append({"label": spec.labels[c], "score": round(float(probs[i, c]), 6), **_map_stats(m)})
            tiles.append(np.hstack(row))
            record["faces"].append(face)
        if target_png is not None:
            width = max(t.shape[1] for t in tiles)
            sheet = np.vstack([np.pad(t, ((0, 0), (0, width - t.shape[1]), (0, 0))) for t in tiles])
            write_image_atomic(target_png, sheet)
            record["output"] = str(target_png)
        records.append(record)
    return records


# ----------------------------------------------------------------------------- checks
def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra = np.argsort(np.argsort(a.ravel())).astype(np.float64)
    rb = np.argsort(np.argsort(b.ravel())).astype(np.float64)
    if ra.std() == 0 or rb.std() == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def deletion_curve(predict, x: np.ndarray, maps: np.ndarray, classes: np.ndarray, steps: int = 10,
                   order: str = "saliency", seed: int = 0) -> np.ndarray:
    """Mean probability of `classes` as the most salient (or random) pixels are replaced by gray."""
    n, H, W, C = x.shape
    sal = upsample(maps, (H, W)).reshape(n, -1)
    rng = np.random.default_rng(seed)
    ranks = np.argsort(-sal, axis=1) if order == "saliency" else np.stack([rng.permutation(H * W) for _ in range(n)])
    curve = []
    for s in range(steps + 1):
        k = int(round(H * W * s / steps))
        xd = x.reshape(n, H * W, C).astype(np.float32).copy()
        for i in range(n):
            xd[i, ranks[i, :k]] = 127.0
        p = predict(xd.reshape(n, H, W, C))
        curve.append(float(p[np.arange(n), classes].mean()))
    return np.array(curve)


def auc(curve: np.ndarray) -> float:
    xs = np.linspace(0, 1, len(curve))
    return float(np.sum((curve[1:] + curve[:-1]) / 2 * np.diff(xs)))


def run_checks(model_path: str | Path, data: str, edge_model: str | Path | None = None, n: int = 200,
               method: str = "gradcam", out: str | Path | None = None, seed: int = 0) -> dict:
    """The three checks of docs/explain.md on a stratified PublicTest (val) sample."""
    import keras

    from fer_edge.data import load_splits, stratified_sample
    from fer_edge.training.keras_backend import KerasBackend

    kb = KerasBackend.load(Path(model_path), framework="tensorflow")  # Grad-CAM uses its GradientTape
    spec = kb.spec
    cm = spec.class_map_obj()
    s = load_splits(data, cm)
    idx = stratified_sample(s.y_val, n, seed)
    x, y = s.x_val[idx], s.y_val[idx]
    gc = make_explainer(kb.model, method)
    maps, probs = gc(x)
    pred = probs.argmax(1)
    result: dict = {"model": str(model_path), "method": method, "n": int(len(x)), "layer": getattr(gc, "layer", None)
                    and gc.layer.name, "val_source": s.val_source}
    # 1. randomised weights (Adebayo et al. 2018): maps must change
    rnd = keras.models.clone_model(kb.model)
    rnd.set_weights([np.random.default_rng(seed + i).normal(0, 0.05, w.shape).astype(w.dtype) if w.ndim > 1 else w
                     for i, w in enumerate(kb.model.get_weights())])
    rmaps, _ = make_explainer(rnd, method)(x, pred)
    up, rup = upsample(maps, spec.size), upsample(rmaps, spec.size)
    rhos = [spearman(a, b) for a, b in zip(up, rup)]
    result["randomisation"] = {"mean_spearman_trained_vs_random": round(float(np.mean(rhos)), 4),
                               "median": round(float(np.median(rhos)), 4)}
    # 2. deletion curve vs random deletion
    pred_fn = kb.predict
    d_sal = deletion_curve(pred_fn, x, maps, pred, order="saliency", seed=seed)
    d_rnd = deletion_curve(pred_fn, x, maps, pred, order="random", seed=seed)
    result["deletion"] = {"fractions": np.linspace(0, 1, len(d_sal)).round(2).tolist(),
                          "saliency_curve": d_sal.round(4).tolist(), "random_curve": d_rnd.round(4).tolist(),
                          "auc_saliency": round(auc(d_sal), 4), "auc_random": round(auc(d_rnd), 4)}
    # 3. edge CAM (exported file, runtime backend) vs Grad-CAM from Keras
    if edge_model:
        from fer_edge.runtime.backends import load_backend
        from fer_edge.runtime.cam import cam_maps, require_cam

        eb = load_backend(edge_model)
        eprobs, efeat = eb.run(x)[:2]
        emaps = cam_maps(efeat, require_cam(eb.spec), pred)
        eup = upsample(emaps, spec.size)
        corr = [pearson(a, b) for a, b in zip(eup, up)]
        result["edge_agreement"] = {"edge_model": str(edge_model), "mean_pearson_edge_cam_vs_gradcam": round(float(np.mean(corr)), 4),
                                    "top1_agreement": round(float((eprobs.argmax(1) == pred).mean()), 4)}
    if out:
        _check_figures(result, Path(out), x, y, maps, pred, spec)
    return result


def _check_figures(result: dict, out: Path, x, y, maps, pred, spec) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    d = result["deletion"]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(d["fractions"], d["saliency_curve"], "r-o", ms=3, label=f"most salient first (AUC {d['auc_saliency']:.3f})")
    ax.plot(d["fractions"], d["random_curve"], "k--o", ms=3, label=f"random order (AUC {d['auc_random']:.3f})")
    ax.set_xlabel("fraction of pixels replaced by gray"), ax.set_ylabel("prob. of predicted class")
    ax.legend(fontsize=8), ax.grid(alpha=0.3)
    fig.tight_layout()
    from fer_edge.outputs import atomic_path
    from fer_edge.runtime.images import write_image_atomic

    with atomic_path(out / "deletion_curve.png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    rows = []
    for c in range(len(spec.labels)):
        idx = np.flatnonzero((y == c) & (pred == c))[:3]
        if len(idx) == 0:
            continue
        tiles = [overlay(x[i, :, :, 0], maps[i], 96) for i in idx]
        for t in tiles:
            cv2.putText(t, spec.labels[c][:8], (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
        while len(tiles) < 3:
            tiles.append(np.zeros_like(tiles[0]))
        rows.append(np.hstack(tiles))
    if rows:
        write_image_atomic(out / "gallery.png", np.vstack(rows))
