"""medft's Caffe-schema subset against the real caffe.proto, and file round-trips with real Caffe."""

from __future__ import annotations

import numpy as np
import pytest
from google.protobuf.descriptor import FieldDescriptor
from medft.schema import (
    array_to_blob,
    array_to_datum,
    datum_to_array,
    net_weights,
    pb,
    read_net,
    write_net_binary,
)
from medft.util.atomic import write_text_atomic

pytestmark = pytest.mark.caffe


def _messages(desc, prefix=""):
    for m in desc.message_types_by_name.values() if hasattr(desc, "message_types_by_name") else desc:
        yield prefix + m.name, m
        yield from _messages(m.nested_types, prefix + m.name + ".")


def _field_facts(f: FieldDescriptor) -> dict:
    facts = {"number": f.number, "type": f.type, "label": f.label,
             "has_default": f.has_default_value, "packed": f.GetOptions().packed}
    if f.has_default_value:
        facts["default"] = f.default_value if f.type != f.TYPE_ENUM else f.enum_type.values_by_number[
            f.default_value].name
    if f.message_type is not None:
        facts["message"] = f.message_type.name
    if f.enum_type is not None:
        facts["enum"] = f.enum_type.name
    return facts


def test_every_message_and_field_equals_caffe_proto(caffe):
    from caffe.proto import caffe_pb2

    theirs = dict(_messages(caffe_pb2.DESCRIPTOR))
    ours = dict(_messages(pb.DESCRIPTOR))
    assert len(ours) >= 25
    for name, m in ours.items():
        assert name in theirs, f"message {name} is not in caffe.proto"
        t = theirs[name]
        for f in m.fields:
            assert f.name in t.fields_by_name, f"{name}.{f.name} is not in caffe.proto"
            assert _field_facts(f) == _field_facts(t.fields_by_name[f.name]), f"{name}.{f.name}"
        for e in m.enum_types:
            te = t.enum_types_by_name[e.name]
            assert {v.name: v.number for v in e.values}.items() <= \
                {v.name: v.number for v in te.values}.items(), f"{name}.{e.name}"
    phase_ours = {v.name: v.number for v in pb.DESCRIPTOR.enum_types_by_name["Phase"].values}
    assert phase_ours == {v.name: v.number for v in caffe_pb2.DESCRIPTOR.enum_types_by_name["Phase"].values}


def test_comparison_would_catch_a_wrong_number_or_default():
    """A copy of our schema with one field number and one default changed: the facts the comparison
    uses must tell each changed field from the original, and only those."""
    from google.protobuf import descriptor_pb2, descriptor_pool

    fdp = descriptor_pb2.FileDescriptorProto()
    pb.DESCRIPTOR.CopyToProto(fdp)
    filler = next(m for m in fdp.message_type if m.name == "FillerParameter")
    next(f for f in filler.field if f.name == "std").number = 99
    next(f for f in filler.field if f.name == "mean").default_value = "0.5"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    tampered = pool.FindMessageTypeByName("medft.caffe.FillerParameter")
    original = pb.FillerParameter.DESCRIPTOR
    for name in ("std", "mean"):
        assert _field_facts(tampered.fields_by_name[name]) != _field_facts(original.fields_by_name[name]), name
    assert _field_facts(tampered.fields_by_name["min"]) == _field_facts(original.fields_by_name["min"])


def test_datum_round_trip_through_caffe_io(caffe):
    img = np.random.default_rng(0).integers(0, 256, size=(3, 5, 7), dtype=np.uint8)
    raw = array_to_datum(img, 1).SerializeToString()
    from caffe.proto import caffe_pb2

    d = caffe_pb2.Datum()
    d.ParseFromString(raw)
    arr = caffe.io.datum_to_array(d)
    assert d.label == 1 and np.array_equal(arr, img)
    back, label = datum_to_array(caffe.io.array_to_datum(img, 0).SerializeToString())
    assert label == 0 and np.array_equal(back, img)


SMALL_NET = """
name: "small"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 11 dim: 11 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 4 kernel_size: 3 stride: 2 group: 1
    weight_filler { type: "gaussian" std: 0.1 } bias_filler { type: "constant" value: 0.1 } } }
layer { name: "norm1" type: "LRN" bottom: "conv1" top: "norm1" lrn_param { local_size: 3 alpha: 0.0001 } }
layer { name: "fc" type: "InnerProduct" bottom: "norm1" top: "fc"
  inner_product_param { num_output: 3 weight_filler { type: "xavier" }
    bias_filler { type: "constant" value: 0.5 } } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


def test_caffemodel_written_by_caffe_parses_with_our_schema(caffe, tmp_path):
    proto = tmp_path / "small.prototxt"
    proto.write_text(SMALL_NET)
    net = caffe.Net(str(proto), caffe.TEST)
    net.save(str(tmp_path / "small.caffemodel"))
    ours = net_weights(read_net(tmp_path / "small.caffemodel"))
    assert set(ours) == {"conv1", "fc"}
    for name in ours:
        for mine, theirs in zip(ours[name], net.params[name]):
            assert mine.shape == theirs.data.shape
            assert np.array_equal(mine, theirs.data)


@pytest.mark.parametrize("form", ["V1", "V2"])
def test_caffemodel_written_with_our_schema_loads_into_caffe(caffe, tmp_path, form):
    proto = tmp_path / "small.prototxt"
    proto.write_text(SMALL_NET)
    rng = np.random.default_rng(7)
    weights = {"conv1": [rng.normal(size=(4, 3, 3, 3)), rng.normal(size=(4,))],
               "fc": [rng.normal(size=(3, 100)), rng.normal(size=(3,))]}
    model = pb.NetParameter(name="small")
    for name, arrays in weights.items():
        if form == "V1":  # as bvlc_alexnet.caffemodel: enum types, legacy 4-D blobs
            layer = model.layers.add(name=name, type=pb.V1LayerParameter.CONVOLUTION if name == "conv1"
                                     else pb.V1LayerParameter.INNER_PRODUCT)
            layer.blobs.extend(array_to_blob(a, legacy_4d=True) for a in arrays)
        else:
            layer = model.layer.add(name=name, type="Convolution" if name == "conv1" else "InnerProduct")
            layer.blobs.extend(array_to_blob(a) for a in arrays)
    write_net_binary(tmp_path / "w.caffemodel", model)
    net = caffe.Net(str(proto), str(tmp_path / "w.caffemodel"), caffe.TEST)
    for name, arrays in weights.items():
        for a, blob in zip(arrays, net.params[name]):
            np.testing.assert_array_equal(blob.data, a.astype(np.float32))


def test_atomic_write_leaves_no_temp(tmp_path):
    write_text_atomic(tmp_path / "a" / "f.txt", "x")
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["f.txt"]


def test_committed_python_module_matches_the_proto(tmp_path):
    import shutil
    import subprocess

    from tests.conftest import ROOT

    src = ROOT / "python/medft/proto"
    shutil.copy(src / "medft_caffe.proto", tmp_path)
    subprocess.run(["protoc", f"--proto_path={tmp_path}", f"--python_out={tmp_path}", "medft_caffe.proto"],
                   check=True)
    assert (tmp_path / "medft_caffe_pb2.py").read_bytes() == (src / "medft_caffe_pb2.py").read_bytes()
