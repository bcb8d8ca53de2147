"""The Caffe build step: pinned source, patches that apply, clear errors, a stable cache key."""

from __future__ import annotations

import tarfile

import pytest
from medft.engines import build as cb
from medft.errors import MedftError


def test_key_names_version_and_changes_with_the_patches(monkeypatch):
    key = cb.build_key()
    assert len(key) == 12 and int(key, 16) >= 0
    monkeypatch.setattr(cb, "SOURCE_PATCHES", cb.SOURCE_PATCHES[:-1])
    assert cb.build_key() != key, "a different patch set must be a different build"
    monkeypatch.undo()
    assert cb.install_dir().name == f"brocolli-caffe-9.0.2-{cb.build_key()}"


def test_makefile_config_has_the_measured_settings():
    cfg = cb.makefile_config("/np/include")
    for line in ("CPU_ONLY := 1", "USE_OPENCV := 1", "USE_LMDB := 1", "USE_LEVELDB := 1",
                 "OPENCV_VERSION := 3", "BLAS := open", "PYTHON_LIBRARIES := boost_python311 python3.11"):
        assert line in cfg
    assert "/usr/include/opencv4" in cfg and "/usr/include/hdf5/serial" in cfg and "/np/include" in cfg


def test_missing_package_is_named():
    assert cb.missing_debian_packages(["medft-no-such-package", "coreutils"]) == ["medft-no-such-package"]


def test_patches_apply_to_the_pinned_sdist(tmp_path):
    sdist = cb.cache_root() / "downloads" / "brocolli-caffe-9.0.2.tar.gz"
    if not sdist.is_file():
        pytest.skip("the sdist is not in the cache (make caffe downloads it)")
    assert cb.sha256_of(sdist) == cb.SDIST_SHA256
    members = {f"brocolli-caffe-9.0.2/{rel}" for rel, *_ in cb.SOURCE_PATCHES + cb.HEADER_PATCHES}
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp_path, members=[m for m in tar.getmembers() if m.name in members])
    src = tmp_path / "brocolli-caffe-9.0.2"
    cb.apply_patches(src)
    for rel, old, new in cb.SOURCE_PATCHES:
        text = (src / rel).read_text()
        assert new in text and (old in new or old not in text), rel
    with pytest.raises(MedftError, match="patch target"):
        cb.apply_patches(src)  # a second application finds nothing to replace


@pytest.mark.caffe
def test_build_is_installed_with_tools():
    root = cb.install_dir()
    assert cb.is_installed(root)
    for tool in cb.TOOLS:
        assert (root / "build/tools" / tool).is_file()
    assert (root / "proto/caffe.proto").is_file()


def test_gpu_build_has_its_own_key_and_folder():
    assert cb.build_key(gpu=True) != cb.build_key(gpu=False)
    assert cb.install_dir(gpu=True).name == f"brocolli-caffe-9.0.2-cuda-{cb.build_key(gpu=True)}"
    assert cb.install_dir(gpu=True).parent == cb.install_dir().parent  # side by side in the cache


def test_gpu_makefile_config_names_the_toolkit_and_architectures():
    cfg = cb.gpu_makefile_config("/np/include", "/tk/nvidia/cu13", "/tk/nvidia/cudnn")
    assert "CPU_ONLY" not in cfg and "USE_CUDNN := 1" in cfg and "USE_OPENCV := 0" in cfg
    assert "CUDA_DIR := /tk/nvidia/cu13" in cfg and "NVCCFLAGS += -std=c++17" in cfg
    arch = next(line for line in cfg.splitlines() if line.startswith("CUDA_ARCH := "))
    assert arch == ("CUDA_ARCH := -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 "
                    "-gencode arch=compute_90,code=compute_90")
    assert "/tk/nvidia/cudnn/include" in cfg and "-Wl,-rpath,/tk/nvidia/cudnn/lib" in cfg


def test_gpu_patches_apply_to_the_pinned_sdist(tmp_path):
    """Every GPU patch finds its target once; the cuDNN queries removed in cuDNN 8 are gone."""
    sdist = cb.cache_root() / "downloads" / "brocolli-caffe-9.0.2.tar.gz"
    if not sdist.is_file():
        pytest.skip("the sdist is not in the cache (make caffe downloads it)")
    rels = {rel for rel, *_ in cb.SOURCE_PATCHES + cb.HEADER_PATCHES + cb.GPU_SOURCE_PATCHES}
    rels |= {rel for rel, _ in cb.GPU_REMOVED_FILES}
    members = {f"brocolli-caffe-9.0.2/{rel}" for rel in rels}
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp_path, members=[m for m in tar.getmembers() if m.name in members])
    src = tmp_path / "brocolli-caffe-9.0.2"
    for rel, old, _new, _why in cb.GPU_SOURCE_PATCHES:
        assert (src / rel).read_text().count(old) == 1, rel
    cb.apply_patches(src, gpu=True)
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
    assert cb.sync_tree(staged, src) == 2
    for f in src.rglob("*.c*"):
        os.utime(f, (1_000_000, 1_000_000))
    (src / ".temp_release").mkdir()
    (src / ".temp_release" / "a.o").write_text("object")
    (src / "src" / "gone.hpp").write_text("removed by a patch")
    (staged / "src" / "b.cu").write_text("int b = 1;")
    assert cb.sync_tree(staged, src) == 1
    assert (src / "src" / "a.cpp").stat().st_mtime == 1_000_000  # unchanged: make keeps its object
    assert (src / "src" / "b.cu").stat().st_mtime > 1_000_000 and (src / "src" / "b.cu").read_text() == "int b = 1;"
    assert not (src / "src" / "gone.hpp").exists() and (src / ".temp_release" / "a.o").exists()


def test_extra_layers_without_gpu_code_get_cpu_fallbacks():
    for file, cls in cb.CPU_ONLY_EXTRA_LAYERS:
        patch = next(p for p in cb.GPU_SOURCE_PATCHES if p[0].endswith(file))
        assert f"void {cls}<Dtype>::Forward_gpu" in patch[2] and "Forward_cpu(bottom, top);" in patch[2]
        assert patch[2].rstrip().endswith(f"INSTANTIATE_CLASS({cls});")
