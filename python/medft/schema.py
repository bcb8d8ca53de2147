"""Caffe's wire format without Caffe: medft's own subset of ``caffe.proto``.

``pb`` is the generated module of ``proto/medft_caffe.proto`` (package
``medft.caffe``); its messages are field-for-field Caffe's, so text and binary
files are interchangeable with real Caffe.  Helpers here convert between numpy
arrays and ``Datum``/``BlobProto`` and read/write prototxt and caffemodels (written through
:mod:`medft.util.atomic`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from google.protobuf import text_format

from medft.errors import MedftError
from medft.proto import medft_caffe_pb2 as pb
from medft.util.atomic import write_text_atomic

__all__ = [
    "pb", "array_to_datum", "datum_to_array", "blob_to_array", "array_to_blob",
    "read_prototxt", "read_net", "write_net_binary",
    "net_weights",
]


def array_to_datum(img: np.ndarray, label: int) -> pb.Datum:
    """A ``Datum`` from a uint8 image in C x H x W order (BGR for colour, as Caffe's OpenCV path)."""
    img = np.asarray(img)
    if img.dtype != np.uint8:
        raise MedftError(f"Datum pixels must be uint8, got {img.dtype}")
    if img.ndim != 3:
        raise MedftError(f"Datum image must be C x H x W, got shape {img.shape}")
    c, h, w = img.shape
    return pb.Datum(channels=c, height=h, width=w, data=np.ascontiguousarray(img).tobytes(),
                    label=int(label))


def datum_to_array(datum: pb.Datum | bytes) -> tuple[np.ndarray, int]:
    """(C x H x W uint8 array, label) from a ``Datum`` or its serialised bytes."""
    if isinstance(datum, bytes | bytearray | memoryview):
        d = pb.Datum()
        d.ParseFromString(bytes(datum))
        datum = d
    if datum.encoded:
        raise MedftError("encoded (compressed) Datums are not supported; write raw pixels")
    if datum.data:
        arr = np.frombuffer(datum.data, dtype=np.uint8)
    else:
        arr = np.asarray(datum.float_data, dtype=np.float32)
    return arr.reshape(datum.channels, datum.height, datum.width), int(datum.label)


#: ``BlobProto.data`` is field 5, ``[packed = true]``: on the wire one length-delimited record (wire
#: type 2) of little-endian float32 values
_DATA_TAG = bytes([5 << 3 | 2])


def _varint(n: int) -> bytes:
    """Protobuf's base-128 varint of a non-negative integer."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def blob_values(blob: pb.BlobProto) -> np.ndarray:
    """A ``BlobProto``'s values as flat float32. The packed ``data`` field is read as the raw bytes
    protobuf serializes for it: its element-by-element conversion takes seconds for fc6's 38 million
    values."""
    n = len(blob.data)
    if n == 0:
        return np.asarray(blob.double_data, dtype=np.float32)
    only = pb.BlobProto()
    only.CopyFrom(blob)  # a copy in C; then every field but data cleared
    for name in ("shape", "num", "channels", "height", "width", "diff", "double_data", "double_diff"):
        only.ClearField(name)
    raw = only.SerializeToString()
    if raw[:1] != _DATA_TAG:  # not packed: read it the slow way
        return np.asarray(blob.data, dtype=np.float32)
    return np.frombuffer(raw, dtype="<f4", offset=len(raw) - 4 * n).copy()


def blob_to_array(blob: pb.BlobProto) -> np.ndarray:
    """A float32 array of a ``BlobProto``, with its N-D ``shape`` or legacy 4-D dims."""
    if blob.HasField("shape"):
        shape = tuple(blob.shape.dim)
    else:
        shape = (blob.num, blob.channels, blob.height, blob.width)
    return blob_values(blob).reshape(shape)


def array_to_blob(arr: np.ndarray, legacy_4d: bool = False) -> pb.BlobProto:
    """A ``BlobProto`` holding ``arr`` (float32); ``legacy_4d`` writes num/channels/height/width. The
    values go in as the packed field's bytes, which protobuf parses at memory speed."""
    arr = np.asarray(arr, dtype=np.float32)
    blob = pb.BlobProto()
    if legacy_4d:
        dims = (1,) * (4 - arr.ndim) + arr.shape
        blob.num, blob.channels, blob.height, blob.width = dims
    else:
        blob.shape.dim.extend(arr.shape)
    if arr.size:
        raw = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        blob.MergeFromString(_DATA_TAG + _varint(len(raw)) + raw)
    return blob


def read_prototxt(path: str | Path, message):
    """Parse a text-format file into ``message`` (an instance), naming the file on error."""
    path = Path(path)
    if not path.is_file():
        raise MedftError(f"{path}: no such file")
    try:
        text_format.Merge(path.read_text(), message)
    except text_format.ParseError as e:
        raise MedftError(f"{path}: {e}") from None
    return message


def read_net(path: str | Path) -> pb.NetParameter:
    """A binary ``NetParameter`` (``.caffemodel``), V1 or V2 layer form."""
    path = Path(path)
    if not path.is_file():
        raise MedftError(f"{path}: no such caffemodel")
    net = pb.NetParameter()
    try:
        net.ParseFromString(path.read_bytes())
    except Exception as e:  # protobuf raises DecodeError
        raise MedftError(f"{path}: not a Caffe NetParameter ({e})") from None
    return net


def write_net_binary(path: str | Path, net: pb.NetParameter) -> None:
    write_text_atomic(path, net.SerializeToString())


def net_weights(net: pb.NetParameter) -> dict[str, list[np.ndarray]]:
    """Layer name -> list of parameter arrays, from ``layer`` (V2) or ``layers`` (V1)."""
    out: dict[str, list[np.ndarray]] = {}
    for layer in list(net.layer) + list(net.layers):
        if len(layer.blobs):
            out[layer.name] = [blob_to_array(b) for b in layer.blobs]
    return out
