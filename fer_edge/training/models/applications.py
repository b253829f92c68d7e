"""keras.applications backbones the study used: VGG16 (Simonyan & Zisserman 2015), ResNet50 and
ResNet50V2 (He et al. 2016a/b), EfficientNetB0 (Tan & Le 2019).

48x48 gray faces are repeated to 3 channels inside the model, then each backbone's own
ImageNet normalisation is applied with plain layers (no Lambda), then the study's head:
GAP -> 512 -> 0.5 -> 256 -> 0.3 -> softmax, with a BatchNorm between each Dense and its ReLU
(`head_norm=False`: the study's own, whose first Dense dies within ~100 Adam steps from scratch:
common.apply_dense_head). `weights`: "imagenet" (Keras' own download and
cache; fails offline with a clear message), None, or a path to a local no-top weights file.
`upscale`: the `NAME_96` variants (registry.py) resize the face bilinearly inside the model first, so a
backbone designed for 224x224 ends on a 3x3 feature map (ResNet, EfficientNet) instead of 2x2.
"""
from __future__ import annotations

from pathlib import Path

from fer_edge.training.models._lazy import keras, layers

from fer_edge.errors import ModelError
from fer_edge.training.models.common import apply_dense_head
from fer_edge.training.registry import from_scratch, register_model

_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)  # gray repeated, so channel order is moot


def _normalise(x, mode: str):
    if mode == "caffe":  # VGG16, ResNet50: mean subtraction on 0..255
        return layers.Normalization(mean=list(_CAFFE_MEAN_BGR), variance=[1.0, 1.0, 1.0], name="imagenet_norm")(x)
    if mode == "tf":  # ResNet50V2: scale to -1..1
        return layers.Rescaling(1.0 / 127.5, offset=-1.0, name="imagenet_norm")(x)
    return x  # EfficientNet normalises inside the backbone (expects 0..255)


def resolve_weights(weights):
    """'imagenet' | 'none' | None | PATH -> (keras weights arg, local file or None)."""
    if from_scratch(weights):
        return None, None
    if str(weights).lower() == "imagenet":
        return "imagenet", None
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ModelError(f"--weights {weights}: no such file; use imagenet, none, or a local .h5/.weights.h5 file.")
    return None, path


def _backbone(app_fn, name: str, mode: str, input_shape, num_classes, weights="none", head_norm: bool = True,
              upscale: int | None = None, **_):
    kweights, local = resolve_weights(weights)
    inputs = keras.Input(shape=input_shape, name="pixels")
    x = inputs
    size = tuple(input_shape[:2])
    if upscale:
        size = (int(upscale), int(upscale))
        x = layers.Resizing(*size, interpolation="bilinear", name="upscale")(x)
    if input_shape[-1] == 1:
        x = layers.Concatenate(name="gray_to_rgb")([x, x, x])
    x = _normalise(x, mode)
    try:
        base = app_fn(include_top=False, weights=kweights, input_shape=(*size, 3), name="backbone")
    except Exception as exc:  # offline download, corrupt cache...
        if kweights == "imagenet":
            raise ModelError(
                f"could not get ImageNet weights for {name} ({exc.__class__.__name__}: {str(exc)[:120]}); "
                "this machine may be offline: pass --weights none, or --weights PATH to a local no-top weights file."
            ) from None
        raise
    if local is not None:
        try:
            base.load_weights(str(local))
        except Exception as exc:
            raise ModelError(f"--weights {local}: cannot load into {name} ({str(exc)[:160]}).") from None
    x = base(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = apply_dense_head(x, num_classes, norm=head_norm)
    return keras.Model(inputs, outputs, name=name if not upscale else f"{name}_{int(upscale)}")


#: precise_bn: from scratch, these backbones' BatchNorm moving averages lag far behind their weights early
#: on (training.precise_bn; efficientnetb0 at epoch 6: 19.9 % PublicTest as saved, 37.9 % re-estimated)
_TWO_PHASE = {"lr": 1e-3, "two_phase": True, "finetune_lr": 1e-5, "finetune_fraction": 0.3, "precise_bn": 4096}


#: the upscaled variants (NAME_96): 4x the MACs, the same weights; for a GPU (docs/results.md, "The whole zoo")
_UPSCALED = (96,)


#: vgg16 has no normalisation layer: from scratch at 1e-3 (Adam) its pooled features varied by 2e6 across faces
#: after one epoch (scripts/head_health.py) and it answered the majority class; at 1e-4 it left it by epoch 2
#: (docs/results.md, "The whole zoo")
@register_model("vgg16", source="Simonyan & Zisserman 2015; keras.applications.VGG16", family="applications",
                defaults={**_TWO_PHASE, "scratch_lr": 1e-4}, pretrained=True, upscaled=_UPSCALED)
def vgg16(input_shape, num_classes, weights="none", **kw):
    return _backbone(keras.applications.VGG16, "vgg16", "caffe", input_shape, num_classes, weights, **kw)


@register_model("resnet50", source="He et al. 2016 (arXiv:1512.03385); keras.applications.ResNet50",
                family="applications", defaults=_TWO_PHASE, pretrained=True, upscaled=_UPSCALED)
def resnet50(input_shape, num_classes, weights="none", **kw):
    return _backbone(keras.applications.ResNet50, "resnet50", "caffe", input_shape, num_classes, weights, **kw)


@register_model("resnet50v2", source="He et al. 2016 (arXiv:1603.05027); keras.applications.ResNet50V2",
                family="applications", defaults=_TWO_PHASE, pretrained=True, upscaled=_UPSCALED)
def resnet50v2(input_shape, num_classes, weights="none", **kw):
    return _backbone(keras.applications.ResNet50V2, "resnet50v2", "tf", input_shape, num_classes, weights, **kw)


@register_model("efficientnetb0", source="Tan & Le 2019 (arXiv:1905.11946); keras.applications.EfficientNetB0",
                family="applications", defaults=_TWO_PHASE, pretrained=True, upscaled=_UPSCALED)
def efficientnetb0(input_shape, num_classes, weights="none", **kw):
    return _backbone(keras.applications.EfficientNetB0, "efficientnetb0", "none", input_shape, num_classes, weights, **kw)
