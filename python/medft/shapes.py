"""Blob and parameter shapes of a Caffe net computed from its prototxt, without Caffe.

Covers the layer types of medft's nets with Caffe's arithmetic: convolution rounds down,
pooling rounds *up* (``ceil((in + 2 pad - k) / stride) + 1``), InnerProduct flattens from
axis 1. Used where no Caffe is at hand (checking pretrained weights before `caffe train` in a
container) and tested against real Caffe.
"""

from __future__ import annotations

import math

from medft.errors import MedftError
from medft.schema import pb

PASS_THROUGH = {"ReLU", "LRN", "Dropout", "Softmax"}


def _one(values, default: int) -> int:
    return int(values[0]) if len(values) else default


def net_shapes(net: pb.NetParameter, input_shape: tuple[int, ...]
               ) -> tuple[dict[str, tuple[int, ...]], dict[str, list[tuple[int, ...]]]]:
    """(blob name -> shape, layer name -> parameter blob shapes) for input ``data`` of ``input_shape``.

    Data/Input layers produce ``data`` (and ``label``); loss and accuracy layers are skipped.
    """
    blobs: dict[str, tuple[int, ...]] = {}
    params: dict[str, list[tuple[int, ...]]] = {}
    n = input_shape[0]
    for layer in net.layer:
        t = layer.type
        if t in ("Data", "Input"):
            blobs["data"] = tuple(input_shape)
            if len(layer.top) > 1:
                blobs[layer.top[1]] = (n,)
            continue
        if t in ("SoftmaxWithLoss", "Accuracy"):
            continue
        if layer.bottom[0] not in blobs:
            raise MedftError(f"layer {layer.name}: unknown input blob {layer.bottom[0]!r}")
        shape = blobs[layer.bottom[0]]
        if t == "Convolution":
            cp = layer.convolution_param
            k, s, p = _one(cp.kernel_size, 1), _one(cp.stride, 1), _one(cp.pad, 0)
            c, h, w = shape[1:]
            if c % cp.group:
                raise MedftError(f"layer {layer.name}: {c} input channels not divisible by group {cp.group}")
            out = (n, cp.num_output, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)
            params[layer.name] = [(cp.num_output, c // cp.group, k, k)] + ([(cp.num_output,)] if cp.bias_term else [])
        elif t == "Pooling":
            pp = layer.pooling_param
            k, s, p = pp.kernel_size, pp.stride, pp.pad
            c, h, w = shape[1:]
            oh, ow = (math.ceil((x + 2 * p - k) / s) + 1 for x in (h, w))
            if p:  # Caffe clips the last window so it starts inside the image
                oh -= (oh - 1) * s >= h + p
                ow -= (ow - 1) * s >= w + p
            out = (n, c, oh, ow)
        elif t == "InnerProduct":
            ip = layer.inner_product_param
            fan_in = math.prod(shape[1:])
            out = (n, ip.num_output)
            params[layer.name] = [(ip.num_output, fan_in)] + ([(ip.num_output,)] if ip.bias_term else [])
        elif t in PASS_THROUGH:
            out = shape
        else:
            raise MedftError(f"layer {layer.name}: type {t} is not handled by medft.shapes")
        blobs[layer.top[0]] = out
    return blobs, params
