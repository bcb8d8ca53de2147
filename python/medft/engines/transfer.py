"""Copying pretrained weights into a net by layer name, and checking that weights fit a net.

One planner (:func:`plan_copy`) decides and reports what is copied, left to the fillers and
ignored, with Caffe's own shape rules, for every engine: pycaffe copies with ``Net.copy_from``
after it (:func:`copy_pretrained`), ``caffe train --weights`` copies the same layers.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from medft.caffemodel import describe, file_layers, layer_shapes
from medft.errors import MedftError


def check_covers(caffemodel: str | Path, net_path: str | Path) -> None:
    """Refuse weights that do not give every learnable layer of the net its parameters, with the
    right shapes: an empty file, a truncated one or another application's would otherwise predict
    from the net's random fillers without a word."""
    from medft.alexnet import INPUT_SIZE
    from medft.schema import pb, read_prototxt
    from medft.shapes import net_shapes

    caffemodel = Path(caffemodel)
    try:
        have = layer_shapes(caffemodel)
    except Exception as e:  # any parse failure means the file is not usable weights
        raise MedftError(f"{caffemodel}: not a readable caffemodel ({type(e).__name__}: {e})") from None
    _, want = net_shapes(read_prototxt(net_path, pb.NetParameter()), (1, 3, INPUT_SIZE, INPUT_SIZE))
    for name, shapes in want.items():
        if name not in have:
            raise MedftError(f"{caffemodel}: no weights for layer {name} of {Path(net_path).name}: "
                             "not this net's trained model")
        got = [tuple(a) for a in have[name]]
        if got != [tuple(b) for b in shapes]:
            raise MedftError(f"{caffemodel}: layer {name} has shapes {got}, the net needs {shapes}")

#: the weights report's field (weights.json) with the SHA-1s of each copied layer's blobs as training
#: starts, which every engine records (:mod:`medft.copy_check` verifies them)
START_FIELD = "start_sha1"


@dataclass
class CopyReport:
    """What :func:`copy_pretrained` did: layer names copied, left to the net's fillers, and ignored."""

    source: str
    description: str
    copied: list[str] = field(default_factory=list)
    initialised: list[str] = field(default_factory=list)  # net layers with params absent from the file
    ignored: list[str] = field(default_factory=list)  # file layers with params absent from the net
    seconds: float = 0.0

    def summary(self) -> str:
        """A few human lines: the source (saying plainly if it is a stand-in) and the three lists."""
        def names(xs: list[str]) -> str:
            return " ".join(xs) if xs else "(none)"

        return "\n".join([
            f"pretrained weights: {self.description}",
            f"  from {self.source}",
            f"  copied {len(self.copied)} layer(s): {names(self.copied)}",
            f"  initialised by the net's fillers {len(self.initialised)}: {names(self.initialised)}",
            f"  ignored {len(self.ignored)} file layer(s) not in the net: {names(self.ignored)}",
        ])

    def to_dict(self) -> dict:
        """JSON-ready dict (for weights.json and run.json): what was copied, not how long it took."""
        return {k: v for k, v in asdict(self).items() if k != "seconds"}


def _fmt(shape: tuple[int, ...], legacy: bool = False) -> str:
    return f"{tuple(shape)}" + (" (legacy 4-D)" if legacy else "")


def plan_copy(caffemodel: str | Path, net_params: dict[str, list[tuple[int, ...]]]) -> CopyReport:
    """What copying ``caffemodel`` into a net whose learnable layers have ``net_params`` (layer ->
    blob shapes, in net order) will do: the layers copied by name, left to the fillers, ignored.

    Blob counts, shapes and value counts are checked first, exactly as Caffe would check them; a
    mismatch raises :class:`MedftError` naming the layer and both shapes (Caffe would abort). A file
    sharing no parameter layer with the net is refused too: copying nothing is never what was meant.
    Every engine reports through this one function, so ``weights.json`` is the same whichever copies.
    """
    path = Path(caffemodel)
    in_file = file_layers(path)
    report = CopyReport(source=str(path), description=describe(path))
    for name, shapes in net_params.items():
        if name not in in_file:
            if shapes:
                report.initialised.append(name)
            continue
        have = in_file[name]
        if len(have) != len(shapes):
            raise MedftError(f"layer {name}: the net has {len(shapes)} parameter blob(s), {path} has "
                             f"{len(have)}: not the same architecture")
        for i, (fb, shape) in enumerate(zip(have, shapes)):
            count = math.prod(shape)
            if not fb.fits(tuple(shape)):
                raise MedftError(f"layer {name}: the net's blob {i} has shape {_fmt(tuple(shape))} but "
                                 f"{path} has {_fmt(fb.shape, fb.legacy)}: not the same architecture")
            if fb.values != count:
                raise MedftError(f"layer {name}: blob {i} of {path} holds {fb.values} values for shape "
                                 f"{_fmt(fb.shape, fb.legacy)}: corrupt caffemodel")
        if shapes:
            report.copied.append(name)
    report.ignored = [n for n, blobs in in_file.items() if blobs and n not in net_params]
    if not report.copied:
        raise MedftError(f"{path}: no parameter layer shares a name with the net (file: "
                         f"{' '.join(report.ignored) or 'none'}; net: {' '.join(report.initialised)})")
    return report


def plan_copy_into(caffemodel: str | Path, net_prototxt: str | Path) -> CopyReport:
    """:func:`plan_copy` for a net given as prototxt (no Caffe needed)."""
    from medft.alexnet import INPUT_SIZE
    from medft.schema import pb, read_prototxt
    from medft.shapes import net_shapes

    _, params = net_shapes(read_prototxt(net_prototxt, pb.NetParameter()), (1, 3, INPUT_SIZE, INPUT_SIZE))
    return plan_copy(caffemodel, {k: [tuple(s) for s in v] for k, v in params.items()})


def copy_pretrained(net, caffemodel: str | Path) -> CopyReport:
    """Check with :func:`plan_copy`, then let Caffe copy (``Net.copy_from``, which upgrades V1
    files; about a second for the 240 MB AlexNet) into the pycaffe ``net``."""
    path = Path(caffemodel)
    t0 = time.monotonic()
    params = {name: [tuple(b.data.shape) for b in layer.blobs] for name, layer in zip(net._layer_names, net.layers)}
    report = plan_copy(path, {k: v for k, v in params.items() if v})
    net.copy_from(str(path))
    report.seconds = round(time.monotonic() - t0, 3)
    return report
