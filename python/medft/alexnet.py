"""The AlexNet of Table I, described once and emitted as Caffe ``NetParameter``s.

Layer by layer it is BVLC's ``models/bvlc_alexnet`` (LRN before pooling, group 2 on
conv2/4/5, gaussian fillers std 0.01 and 0.005 on fc6/fc7, biases 0 or 0.1, dropout
0.5, 3x227x227 input). What differs between the generated nets is only:

* the application: the last layer has C outputs and is renamed ``fc8_<app>`` so that
  pretrained fc8 weights are not copied into it (as in BVLC's finetune_flickr_style); C is the
  App's, or the prepared data set's for an application whose classes come from the data;
* the configuration: per-layer ``lr_mult``/``decay_mult`` from :mod:`medft.schedule`;
* the scratch initialisation (gaussian, xavier, msra);
* the phase form: ``train_val`` (LMDB Data layers, loss, accuracy) or ``deploy``
  (an Input layer and a Softmax ``prob``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from medft import paths
from medft.apps import get_app
from medft.errors import MedftError
from medft.schedule import BIAS_LR_FACTOR, check_init, get_config
from medft.schema import pb

#: BVLC's ImageNet mean (ilsvrc_2012_mean.npy averaged per channel), BGR. A placeholder in
#: the committed files: the driver writes the training LMDB's own mean into its nets.
IMAGENET_MEAN_BGR: tuple[float, float, float] = (104.0, 117.0, 123.0)

INPUT_SIZE = 227
TRAIN_BATCH = 256  # BVLC AlexNet; the paper does not state its batch size
TEST_BATCH = 50  # BVLC AlexNet


@dataclass(frozen=True)
class ConvSpec:
    """One convolution of Table I (and BVLC's filler/bias choices)."""

    name: str
    num_output: int
    kernel: int
    stride: int = 1
    pad: int = 0
    group: int = 1
    bias: float = 0.0


@dataclass(frozen=True)
class FcSpec:
    name: str
    num_output: int
    std: float
    bias: float


CONVS = (
    ConvSpec("conv1", 96, 11, stride=4),
    ConvSpec("conv2", 256, 5, pad=2, group=2, bias=0.1),
    ConvSpec("conv3", 384, 3, pad=1),
    ConvSpec("conv4", 384, 3, pad=1, group=2, bias=0.1),
    ConvSpec("conv5", 256, 3, pad=1, group=2, bias=0.1),
)
FCS = (FcSpec("fc6", 4096, 0.005, 0.1), FcSpec("fc7", 4096, 0.005, 0.1))
FC8_STD = 0.01
CONV_STD = 0.01
LRN = dict(local_size=5, alpha=0.0001, beta=0.75)
POOL = dict(kernel_size=3, stride=2)
DROPOUT = 0.5


@dataclass
class NetOptions:
    """Knobs of the generated train_val net that do not change the architecture."""

    train_source: str = f"{paths.DATA_ROOT}/{{app}}/{paths.TRAIN_LMDB}"
    val_source: str = f"{paths.DATA_ROOT}/{{app}}/{paths.VAL_LMDB}"
    train_batch: int = TRAIN_BATCH
    test_batch: int = TEST_BATCH
    mean_bgr: tuple[float, ...] = field(default=IMAGENET_MEAN_BGR)
    deploy_batch: int = 10
    num_classes: int = 0  # C of the last layer; 0: the App's (an App whose classes come from the data needs it)


def last_layer_name(app: str) -> str:
    """``fc8_<app>``: renamed so pretrained ImageNet fc8 weights are never copied into it."""
    return f"fc8_{get_app(app).name}"


def _filler(init: str, std: float) -> pb.FillerParameter:
    if init == "gaussian":
        return pb.FillerParameter(type="gaussian", std=std)
    return pb.FillerParameter(type=init)


def _params(config: str, layer: str) -> list[pb.ParamSpec]:
    w = get_config(config).lr_mult(layer)
    return [pb.ParamSpec(lr_mult=w, decay_mult=1), pb.ParamSpec(lr_mult=w * BIAS_LR_FACTOR, decay_mult=0)]


def _add(net: pb.NetParameter, name: str, type_: str, bottom: list[str], top: list[str]) -> pb.LayerParameter:
    layer = net.layer.add(name=name, type=type_)
    layer.bottom.extend(bottom)
    layer.top.extend(top)
    return layer


#: running-average decay of the stand-in's batch normalisation (Caffe's default 0.999 would still
#: remember the first of a few hundred iterations)
BN_MOVING_AVERAGE = 0.9


def _batch_norm(net: pb.NetParameter, blob: str) -> None:
    """Caffe's BatchNorm (its three statistics blobs frozen: lr_mult 0) and a learned per-channel
    shift on ``blob``, in place, as ``<blob>_bn`` and ``<blob>_shift``."""
    bn = _add(net, f"{blob}_bn", "BatchNorm", [blob], [blob])
    bn.param.extend([pb.ParamSpec(lr_mult=0, decay_mult=0) for _ in range(3)])
    bn.batch_norm_param.moving_average_fraction = BN_MOVING_AVERAGE
    shift = _add(net, f"{blob}_shift", "Bias", [blob], [blob])
    shift.param.append(pb.ParamSpec(lr_mult=1, decay_mult=0))


def _body(net: pb.NetParameter, app: str | None, config: str, init: str, num_classes: int = 0,
          batch_norm: bool = False) -> str:
    """Append conv1 .. fc8_<app> to ``net``; return the name of the output blob.

    With ``app=None`` the last layer keeps the ImageNet name ``fc8`` and has ``num_classes``
    outputs: that is the source-task net of ``medft pretrain``. ``batch_norm`` puts
    :func:`_batch_norm` between every conv/fc6/fc7 and its ReLU (the stand-in's training only:
    it is folded into the weights before they are saved).
    """
    bottom = "data"
    for i, c in enumerate(CONVS, start=1):
        conv = _add(net, c.name, "Convolution", [bottom], [c.name])
        conv.param.extend(_params(config, c.name))
        cp = conv.convolution_param
        cp.num_output = c.num_output
        cp.kernel_size.append(c.kernel)
        if c.stride != 1:
            cp.stride.append(c.stride)
        if c.pad:
            cp.pad.append(c.pad)
        if c.group != 1:
            cp.group = c.group
        cp.weight_filler.CopyFrom(_filler(init, CONV_STD))
        cp.bias_filler.CopyFrom(pb.FillerParameter(type="constant", value=c.bias))
        if batch_norm:
            _batch_norm(net, c.name)
        _add(net, f"relu{i}", "ReLU", [c.name], [c.name])
        bottom = c.name
        if i in (1, 2):  # AlexNet order: LRN, then pooling (CaffeNet swaps them)
            norm = _add(net, f"norm{i}", "LRN", [bottom], [f"norm{i}"])
            norm.lrn_param.local_size = LRN["local_size"]
            norm.lrn_param.alpha = LRN["alpha"]
            norm.lrn_param.beta = LRN["beta"]
            bottom = f"norm{i}"
        if i in (1, 2, 5):
            pool = _add(net, f"pool{i}", "Pooling", [bottom], [f"pool{i}"])
            pool.pooling_param.pool = pb.PoolingParameter.MAX
            pool.pooling_param.kernel_size = POOL["kernel_size"]
            pool.pooling_param.stride = POOL["stride"]
            bottom = f"pool{i}"
    for i, f in enumerate(FCS, start=6):
        fc = _add(net, f.name, "InnerProduct", [bottom], [f.name])
        fc.param.extend(_params(config, f.name))
        ip = fc.inner_product_param
        ip.num_output = f.num_output
        ip.weight_filler.CopyFrom(_filler(init, f.std))
        ip.bias_filler.CopyFrom(pb.FillerParameter(type="constant", value=f.bias))
        if batch_norm:
            _batch_norm(net, f.name)
        _add(net, f"relu{i}", "ReLU", [f.name], [f.name])
        drop = _add(net, f"drop{i}", "Dropout", [f.name], [f.name])
        drop.dropout_param.dropout_ratio = DROPOUT
        bottom = f.name
    fc8 = last_layer_name(app) if app else "fc8"
    layer = _add(net, fc8, "InnerProduct", [bottom], [fc8])
    layer.param.extend(_params(config, "fc8"))
    ip = layer.inner_product_param
    ip.num_output = num_classes or get_app(app).num_classes
    if ip.num_output < 2:
        raise MedftError(f"{app}: the number of classes comes from the prepared data set; pass it "
                         "(NetOptions.num_classes, which `medft train` reads from prep.json)")
    ip.weight_filler.CopyFrom(_filler(init, FC8_STD))
    ip.bias_filler.CopyFrom(pb.FillerParameter(type="constant", value=0))
    return fc8


def _net_name(app: str, config: str, init: str) -> str:
    suffix = "" if init == "gaussian" else f"-{init}"
    return f"AlexNet-{app}-{config}{suffix}"


def train_val_net(app: str, config: str, init: str = "gaussian",
                  options: NetOptions | None = None) -> pb.NetParameter:
    """The train/val net: LMDB Data layers (TRAIN and TEST), AlexNet, loss and accuracy.

    The two Data layers have different names: two live Data layers with one name and
    one source abort Caffe (see shared caffe-notes).
    """
    get_config(config)
    check_init(init)
    o = options or NetOptions()
    net = pb.NetParameter(name=_net_name(app, config, init))
    for name, phase, source, batch in (
        ("data_train", pb.TRAIN, o.train_source, o.train_batch),
        ("data_val", pb.TEST, o.val_source, o.test_batch),
    ):
        data = _add(net, name, "Data", [], ["data", "label"])
        data.include.add(phase=phase)
        # Patches are already 227x227 and augmented by `medft prep`: no crop, no mirror.
        data.transform_param.mean_value.extend(o.mean_bgr)
        data.data_param.source = source.format(app=app)
        data.data_param.batch_size = batch
        data.data_param.backend = pb.DataParameter.LMDB
    top = _body(net, app, config, init, o.num_classes)
    acc = _add(net, "accuracy", "Accuracy", [top, "label"], ["accuracy"])
    acc.include.add(phase=pb.TEST)
    _add(net, "loss", "SoftmaxWithLoss", [top, "label"], ["loss"])
    return net


def deploy_net(app: str, config: str, init: str = "gaussian",
               options: NetOptions | None = None) -> pb.NetParameter:
    """The deploy net: Input N x 3 x 227 x 227, AlexNet, Softmax ``prob``."""
    get_config(config)
    check_init(init)
    o = options or NetOptions()
    net = pb.NetParameter(name=_net_name(app, config, init))
    inp = _add(net, "data", "Input", [], ["data"])
    inp.input_param.shape.add(dim=[o.deploy_batch, 3, INPUT_SIZE, INPUT_SIZE])
    top = _body(net, app, config, init, o.num_classes)
    _add(net, "prob", "Softmax", [top], ["prob"])
    return net


def source_task_net(num_classes: int, train_source: str, batch: int,
                    mean_bgr: tuple[float, ...] = IMAGENET_MEAN_BGR, init: str = "gaussian",
                    scale: float = 1.0, batch_norm: bool = False) -> pb.NetParameter:
    """AlexNet with ImageNet layer names (last layer ``fc8``, ``num_classes`` outputs), trained
    from scratch on an LMDB: the net of ``medft pretrain``'s offline stand-in for ImageNet.
    ``init`` names the weight fillers; ``scale`` multiplies the mean-subtracted pixels;
    ``batch_norm`` normalises every layer's output (see :func:`_body`)."""
    net = pb.NetParameter(name=f"AlexNet-source-task-{num_classes}")
    data = _add(net, "data", "Data", [], ["data", "label"])
    data.include.add(phase=pb.TRAIN)
    data.transform_param.mean_value.extend(mean_bgr)
    if scale != 1.0:
        data.transform_param.scale = scale
    data.data_param.source = train_source
    data.data_param.batch_size = batch
    data.data_param.backend = pb.DataParameter.LMDB
    top = _body(net, None, "scratch", init, num_classes, batch_norm)
    _add(net, "loss", "SoftmaxWithLoss", [top, "label"], ["loss"])
    return net
