"""The Caffe build step: pinned source, patches that apply, clear errors, a stable cache key."""

from __future__ import annotations

import tarfile

import pytest
from medft.engines.build import config, debian, install, make, patches, sdist
from medft.errors import MedftError
from medft.paths import cache_root


def test_key_names_version_and_changes_with_the_patches(monkeypatch):
    key = install.build_key()
    assert len(key) == 12 and int(key, 16) >= 0
    monkeypatch.setattr(patches, "SOURCE_PATCHES", patches.SOURCE_PATCHES[:-1])
    assert install.build_key() != key, "a different patch set must be a different build"
    monkeypatch.undo()
    assert install.install_dir().name == f"brocolli-caffe-9.0.2-{install.build_key()}"


def test_makefile_config_has_the_measured_settings():
    cfg = config.makefile_config("/np/include")
    for line in ("CPU_ONLY := 1", "USE_OPENCV := 1", "USE_LMDB := 1", "USE_LEVELDB := 1",
                 "OPENCV_VERSION := 3", "BLAS := open", "PYTHON_LIBRARIES := boost_python311 python3.11"):
        assert line in cfg
    assert "/usr/include/opencv4" in cfg and "/usr/include/hdf5/serial" in cfg and "/np/include" in cfg


def test_missing_package_is_named():
    assert debian.missing_debian_packages(["medft-no-such-package", "coreutils"]) == ["medft-no-such-package"]


def test_patches_apply_to_the_pinned_sdist(tmp_path):
    tarball = cache_root() / "downloads" / "brocolli-caffe-9.0.2.tar.gz"
    if not tarball.is_file():
        pytest.skip("the sdist is not in the cache (make caffe downloads it)")
    assert sdist.sha256_of(tarball) == sdist.SDIST_SHA256
    members = {f"brocolli-caffe-9.0.2/{rel}" for rel, *_ in patches.SOURCE_PATCHES + patches.HEADER_PATCHES}
    with tarfile.open(tarball) as tar:
        tar.extractall(tmp_path, members=[m for m in tar.getmembers() if m.name in members])
    src = tmp_path / "brocolli-caffe-9.0.2"
    patches.apply_patches(src)
    for rel, old, new in patches.SOURCE_PATCHES:
        text = (src / rel).read_text()
        assert new in text and (old in new or old not in text), rel
    with pytest.raises(MedftError, match="patch target"):
        patches.apply_patches(src)  # a second application finds nothing to replace


@pytest.mark.caffe
def test_build_is_installed_with_tools():
    root = install.install_dir()
    assert install.is_installed(root)
    for tool in install.TOOLS:
        assert (root / "build/tools" / tool).is_file()
    assert (root / "proto/caffe.proto").is_file()


def test_gpu_build_has_its_own_key_and_folder():
    assert install.build_key(gpu=True) != install.build_key(gpu=False)
    assert install.install_dir(gpu=True).name == f"brocolli-caffe-9.0.2-cuda-{install.build_key(gpu=True)}"
    assert install.install_dir(gpu=True).parent == install.install_dir().parent  # side by side in the cache


def test_gpu_makefile_config_names_the_toolkit_and_architectures():
    cfg = config.gpu_makefile_config("/np/include", "/tk/nvidia/cu13", "/tk/nvidia/cudnn")
    assert "CPU_ONLY" not in cfg and "USE_CUDNN := 1" in cfg and "USE_OPENCV := 0" in cfg
    assert "CUDA_DIR := /tk/nvidia/cu13" in cfg and "NVCCFLAGS += -std=c++17" in cfg
    arch = next(line for line in cfg.splitlines() if line.startswith("CUDA_ARCH := "))
    assert arch == ("CUDA_ARCH := -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 "
                    "-gencode arch=compute_90,code=compute_90")
    assert "/tk/nvidia/cudnn/include" in cfg and "-Wl,-rpath,/tk/nvidia/cudnn/lib" in cfg


def test_gpu_patches_apply_to_the_pinned_sdist(tmp_path):
    """Every GPU patch finds its target once; the cuDNN queries removed in cuDNN 8 are gone."""
    tarball = cache_root() / "downloads" / "brocolli-caffe-9.0.2.tar.gz"
    if not tarball.is_file():
        pytest.skip("the sdist is not in the cache (make caffe downloads it)")
    rels = {rel for rel, *_ in patches.SOURCE_PATCHES + patches.HEADER_PATCHES + patches.GPU_SOURCE_PATCHES}
    rels |= {rel for rel, _ in patches.GPU_REMOVED_FILES}
    members = {f"brocolli-caffe-9.0.2/{rel}" for rel in rels}
    with tarfile.open(tarball) as tar:
        tar.extractall(tmp_path, members=[m for m in tar.getmembers() if m.name in members])
    src = tmp_path / "brocolli-caffe-9.0.2"
    for rel, old, _new, _why in patches.GPU_SOURCE_PATCHES:
        assert (src / rel).read_text().count(old) == 1, rel
    patches.apply_patches(src, gpu=True)
    conv = (src / "src/caffe/layers/cudnn_conv_layer.cpp").read_text()
    for removed in ("cudnnGetConvolutionForwardAlgorithm(", "cudnnGetConvolutionBackwardFilterAlgorithm(",
                    "cudnnGetConvolutionBackwardDataAlgorithm(", "CUDNN_CONVOLUTION_FWD_SPECIFY_WORKSPACE_LIMIT",
                    "CUDNN_CONVOLUTION_BWD_FILTER_SPECIFY_WORKSPACE_LIMIT"):
        assert removed not in conv
    assert conv.count("Algorithm_v7(") == 3
    assert not (src / "include/caffe/proto/caffe.pb.h").exists()
    assert (src / "src/caffe/util/im_transforms.cpp").read_text().startswith("#ifdef USE_OPENCV\n")


def test_sync_tree_touches_only_what_changed(tmp_path):
    """A rebuild after a failure recompiles only the sources whose patched text changed."""
    import os

    staged, src = tmp_path / "staged", tmp_path / "src"
    (staged / "src").mkdir(parents=True)
    (staged / "src" / "a.cpp").write_text("int a;")
    (staged / "src" / "b.cu").write_text("int b;")
    assert make.sync_tree(staged, src) == 2
    for f in src.rglob("*.c*"):
        os.utime(f, (1_000_000, 1_000_000))
    (src / ".temp_release").mkdir()
    (src / ".temp_release" / "a.o").write_text("object")
    (src / "src" / "gone.hpp").write_text("removed by a patch")
    (staged / "src" / "b.cu").write_text("int b = 1;")
    assert make.sync_tree(staged, src) == 1
    assert (src / "src" / "a.cpp").stat().st_mtime == 1_000_000  # unchanged: make keeps its object
    assert (src / "src" / "b.cu").stat().st_mtime > 1_000_000 and (src / "src" / "b.cu").read_text() == "int b = 1;"
    assert not (src / "src" / "gone.hpp").exists() and (src / ".temp_release" / "a.o").exists()


def test_extra_layers_without_gpu_code_get_cpu_fallbacks():
    for file, cls in patches.CPU_ONLY_EXTRA_LAYERS:
        patch = next(p for p in patches.GPU_SOURCE_PATCHES if p[0].endswith(file))
        assert f"void {cls}<Dtype>::Forward_gpu" in patch[2] and "Forward_cpu(bottom, top);" in patch[2]
        assert patch[2].rstrip().endswith(f"INSTANTIATE_CLASS({cls});")


def test_every_patch_file_is_applied_and_shipped():
    """Each file under patches/ is text of a patch in the tables, and setup.py's package data ships it."""
    import ast
    import fnmatch
    from pathlib import Path

    root = Path(patches.__file__).parent
    files = {p.relative_to(root).as_posix() for p in (root / "patches").rglob("*") if p.is_file()}
    texts = {t for table in (patches.SOURCE_PATCHES, patches.GPU_SOURCE_PATCHES) for _rel, *olds_news in table
             for t in olds_news[:2]} | {h for _rel, h in patches.HEADER_PATCHES}
    for f in sorted(files):
        body = (root / f).read_text()
        used = body in texts or f.endswith("cpu-fallback.new.cpp") and any(
            body.replace("$layer", cls) in texts for _, cls in patches.CPU_ONLY_EXTRA_LAYERS)
        assert used, f"{f}: no patch of the tables applies this text"
    setup = Path(__file__).parents[1] / "setup.py"
    call = next(n for n in ast.walk(ast.parse(setup.read_text())) if isinstance(n, ast.Call)
                and getattr(n.func, "id", "") == "setup")
    data = ast.literal_eval(next(k.value for k in call.keywords if k.arg == "package_data"))["medft"]
    for f in sorted(files):
        path = f"engines/build/{f}"
        assert any(fnmatch.fnmatchcase(path, pat) for pat in data), f"setup.py package_data does not ship {path}"
