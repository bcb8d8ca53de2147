"""The Caffe build step: pinned source, patches that apply, clear errors, a stable cache key."""

from __future__ import annotations

import tarfile

import pytest
from medft import caffe_build as cb


def test_key_is_stable_and_names_version():
    assert cb.build_key() == cb.build_key()
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
        assert old not in text and new in text, rel
    with pytest.raises(SystemExit, match="patch target"):
        cb.apply_patches(src)  # a second application finds nothing to replace


@pytest.mark.caffe
def test_build_is_installed_with_tools():
    root = cb.install_dir()
    assert cb.is_installed(root)
    for tool in cb.TOOLS:
        assert (root / "build/tools" / tool).is_file()
    assert (root / "proto/caffe.proto").is_file()
