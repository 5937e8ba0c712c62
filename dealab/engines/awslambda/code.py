"""Function and layer code, unpacked under the engine's state folder by the SHA-256 of its .zip.

The backend keeps the code a function was created with but answers GetFunction with a download address that
leads nowhere offline, so the engine keeps its own copy: it unpacks each .zip it sees (CreateFunction,
UpdateFunctionCode, PublishLayerVersion) before the backend acknowledges the call, named by digest, and finds
it again by the CodeSha256 the backend reports for a version. One folder per digest serves every version and
function with that code; a function's layers are laid over each other in order in one more folder, the
`/opt` of that combination.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import zipfile
from pathlib import Path

from dealab.wire.store import child_path, rename

# AWS's limits: 50 MB zipped in a request, 250 MB unzipped (function and layers together).
MAX_UNZIPPED_BYTES = 262_144_000


class CodeError(Exception):
    """An AWS error to answer: code, message, HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def digest_of(zip_bytes: bytes) -> str:
    return hashlib.sha256(zip_bytes).hexdigest()


def hex_of_code_sha(code_sha256: str) -> str:
    """The backend's CodeSha256 (base64 of the digest) as the hex name of a folder."""
    return base64.b64decode(code_sha256).hex()


class CodeStore:
    def __init__(self, folder: Path):
        self.folder = folder
        self.code = folder / "code"
        self.layers = folder / "layers"
        self.opt = folder / "opt"

    def add_function_code(self, zip_bytes: bytes) -> str:
        return self._unpack(self.code, zip_bytes)

    def add_layer(self, zip_bytes: bytes) -> str:
        return self._unpack(self.layers, zip_bytes)

    def function_folder(self, code_sha256: str) -> Path | None:
        folder = child_path(self.code, hex_of_code_sha(code_sha256))
        return folder if folder.is_dir() else None

    def opt_folder(self, layer_shas: list[str]) -> Path | None:
        """The layers unpacked over each other in order (as Lambda extracts them into /opt); None without
        layers. Raises CodeError when a layer's content is unknown here."""
        if not layer_shas:
            return None
        digests = [hex_of_code_sha(sha) for sha in layer_shas]
        name = hashlib.sha256(",".join(digests).encode()).hexdigest()
        target = child_path(self.opt, name)
        if target.is_dir():
            return target
        building = self.opt / f".{name}.{os.getpid()}.building"
        shutil.rmtree(building, ignore_errors=True)
        for digest in digests:
            layer = child_path(self.layers, digest)
            if not layer.is_dir():
                raise CodeError("ResourceNotFoundException", "a layer of this function was published before this stack kept layer content; publish it again", 404)
            shutil.copytree(layer, building, dirs_exist_ok=True)
        building.mkdir(parents=True, exist_ok=True)
        _move_into_place(building, target)
        return target

    def forget_all(self) -> None:
        for folder in (self.code, self.layers, self.opt):
            shutil.rmtree(folder, ignore_errors=True)

    def _unpack(self, parent: Path, zip_bytes: bytes) -> str:
        """Unpacks a .zip into parent/<digest> once; returns the digest. A folder appears whole or not at all."""
        digest = digest_of(zip_bytes)
        target = child_path(parent, digest)
        if target.is_dir():
            return digest
        try:
            archive = zipfile.ZipFile(io.BytesIO(zip_bytes))
        except zipfile.BadZipFile:
            raise CodeError("InvalidParameterValueException", "Could not unzip uploaded file. Please check your file, then try to upload again.")
        with archive:
            if sum(member.file_size for member in archive.infolist()) > MAX_UNZIPPED_BYTES:
                raise CodeError("InvalidParameterValueException", f"Unzipped size must be smaller than {MAX_UNZIPPED_BYTES} bytes")
            building = parent / f".{digest}.{os.getpid()}.building"
            shutil.rmtree(building, ignore_errors=True)
            # ZipFile.extractall keeps every member inside the folder: absolute names and '..' are cut off
            archive.extractall(building)
        _move_into_place(building, target)
        return digest


def _move_into_place(building: Path, target: Path) -> None:
    """Renames a finished folder to its name; when another thread got there first, its copy stays."""
    try:
        rename(building, target)
    except OSError:
        if not target.is_dir():
            raise
        shutil.rmtree(building, ignore_errors=True)
