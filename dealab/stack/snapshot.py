"""Snapshots of embedded moto's state, the way LocalStack persists moto: its backends, pickled.

A snapshot covers the journal up to one entry (`seq`); a start loads it and replays only the entries after.
What does not pickle as it is gets a reducer here, in this pickler's own dispatch table (never the global
copyreg one): locks come back new, cryptography keys travel as PEM, and S3 object bodies are stored once
by content in the journal's blob store and referenced by digest, so a snapshot never rewrites every byte.

The file starts with one JSON header line naming the format and the dealab, moto and Python versions that
wrote it; a snapshot written by another version is refused (one log line) and the start falls back to a
full replay of the journal.
"""

from __future__ import annotations

import collections
import copyreg
import hashlib
import importlib
import importlib.metadata
import io
import json
import logging
import pickle
import sys
import tempfile
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path

from dealab.stack.journal import INLINE_BODY_LIMIT, Blobs
from dealab.wire.store import write_atomic

log = logging.getLogger("dealab.snapshot")

FORMAT = 1


def versions() -> dict:
    return {
        "format": FORMAT,
        "dealab": importlib.metadata.version("dealab"),
        "moto": importlib.metadata.version("moto"),
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
    }


class SnapshotRefused(Exception):
    """The snapshot cannot be used (another version wrote it, or it is damaged); the message says which."""


@dataclass(frozen=True)
class Loaded:
    seq: int
    backends: dict  # backend name → {account id → AccountSpecificBackend}


# Reducers ------------------------------------------------------------------------------------------------------


def _new_lock():
    return threading.Lock()


def _new_rlock():
    return threading.RLock()


def _new_condition():
    return threading.Condition()


# A defaultdict whose factory is a lambda making an empty builtin (moto's `defaultdict(lambda: {})`) cannot be
# pickled by reference; it comes back with the builtin as its factory, which makes the same empty values.
EMPTY_BUILTINS = (dict, list, set, int, str)


def _reduce_defaultdict(mapping: collections.defaultdict):
    factory = mapping.default_factory
    if getattr(factory, "__name__", "") == "<lambda>" and not getattr(factory, "__closure__", None):
        made = factory()
        factory = next((kind for kind in EMPTY_BUILTINS if type(made) is kind and made == kind()), factory)
    return collections.defaultdict, (factory,), None, None, iter(mapping.items())


def _weak_value_dictionary(items: dict) -> weakref.WeakValueDictionary:
    return weakref.WeakValueDictionary(items)


def _reduce_weak_value_dictionary(mapping: weakref.WeakValueDictionary):
    # moto's Lambda storage indexes functions by ARN weakly; the functions themselves travel with their owners
    return _weak_value_dictionary, (dict(mapping.items()),)


def _new_event():
    return threading.Event()


def _load_private_key(pem: bytes):
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    return load_pem_private_key(pem, password=None)


def _load_public_key(pem: bytes):
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    return load_pem_public_key(pem)


def _reduce_private_key(key):
    from cryptography.hazmat.primitives import serialization

    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return _load_private_key, (pem,)


def _reduce_public_key(key):
    from cryptography.hazmat.primitives import serialization

    return _load_public_key, (key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),)


def _key_types() -> tuple[list[type], list[type]]:
    from cryptography.hazmat.bindings._rust import openssl as rust

    private = [rust.rsa.RSAPrivateKey, rust.ec.ECPrivateKey, rust.ed25519.Ed25519PrivateKey]
    public = [rust.rsa.RSAPublicKey, rust.ec.ECPublicKey, rust.ed25519.Ed25519PublicKey]
    return private, public


# moto's dict subclasses (S3's versioned key store keeps every version of a key in a list behind an
# overridden __setitem__ and items()) travel as their raw storage and are restored around those overrides.


def _new_instance(cls):
    return cls.__new__(cls)


def _set_raw_dict_state(obj, state) -> None:
    items, attributes, default_factory = state
    dict.update(obj, items)
    if attributes:
        obj.__dict__.update(attributes)
    if default_factory is not None:
        obj.default_factory = default_factory


def _reduce_dict_subclass(obj):
    state = (list(dict.items(obj)), getattr(obj, "__dict__", None), getattr(obj, "default_factory", None))
    return _new_instance, (type(obj),), state, None, None, _set_raw_dict_state


def _moto_dict_types() -> list[type]:
    return [kind for kind in _subclasses(dict) if kind.__module__.startswith("moto.")]


# S3 object bodies: the digest of a body is kept on its key until the body changes, so a snapshot hashes
# and writes only bodies it has not stored before.
_DIGEST = "_dealab_body_digest"
_watching = False


# the blob store of the snapshot being loaded (set by `load`; a snapshot never records where it was written,
# so a state folder can be moved or copied whole)
_loading_blobs: Blobs | None = None


def _restore_s3_key(cls, state: dict, body: bytes | None, digest: str | None):
    """A key whose body travelled inline (small) or by digest in the blob store (large)."""
    key = cls.__new__(cls)
    key.__dict__.update(state)
    key._value_buffer = tempfile.SpooledTemporaryFile(max_size=key._max_buffer_size)
    key.lock = threading.Lock()
    key.value = body if digest is None else _loading_blobs.get(digest)
    if digest is not None:
        key.__dict__[_DIGEST] = digest
    return key


def _watch_s3_bodies() -> None:
    """Forgets a key's stored digest whenever its body is set (moto sets bodies only through this property)."""
    global _watching
    if _watching:
        return
    from moto.s3.models import FakeKey

    original = FakeKey.value

    def set_value(self, new_value):
        self.__dict__.pop(_DIGEST, None)
        original.fset(self, new_value)

    FakeKey.value = property(original.fget, set_value)
    _watching = True


class _Pickler(pickle.Pickler):
    def __init__(self, file, blobs: Blobs, backend_dicts: dict[int, str]):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        from moto.s3.models import FakeKey

        self._blobs = blobs
        self._backend_dicts = backend_dicts
        table = dict(copyreg.dispatch_table)
        table[type(threading.Lock())] = lambda _: (_new_lock, ())
        table[type(threading.RLock())] = lambda _: (_new_rlock, ())
        table[threading.Condition] = lambda _: (_new_condition, ())
        table[threading.Event] = lambda _: (_new_event, ())
        table[weakref.WeakValueDictionary] = _reduce_weak_value_dictionary
        table[collections.defaultdict] = _reduce_defaultdict
        private, public = _key_types()
        for kind in private:
            table[kind] = _reduce_private_key
        for kind in public:
            table[kind] = _reduce_public_key
        for kind in _moto_dict_types():
            table[kind] = _reduce_dict_subclass
        for kind in _subclasses(FakeKey):
            table[kind] = self._reduce_s3_key
        self.dispatch_table = table

    def persistent_id(self, obj):
        # A model that holds a whole BackendDict (moto's per-service registry) must get the live one back.
        return self._backend_dicts.get(id(obj))

    def _reduce_s3_key(self, key):
        state = {name: value for name, value in key.__dict__.items() if name not in ("_value_buffer", "lock", _DIGEST)}
        digest = key.__dict__.get(_DIGEST)
        if digest is not None and self._blobs.has(digest):
            return _restore_s3_key, (type(key), state, None, digest)
        try:
            body = key.value
        except ValueError:  # a disposed key: its buffer is closed
            body = b""
        if len(body) <= INLINE_BODY_LIMIT:  # small bodies ride in the snapshot: a file each would cost more
            return _restore_s3_key, (type(key), state, body, None)
        digest = self._blobs.put(body, hashlib.sha256(body).hexdigest())
        key.__dict__[_DIGEST] = digest
        return _restore_s3_key, (type(key), state, None, digest)


class _Unpickler(pickle.Unpickler):
    def persistent_load(self, name):
        return _resolve(name)


def _subclasses(cls: type) -> list[type]:
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_subclasses(sub))
    return found


# The backends --------------------------------------------------------------------------------------------------


def _backend_dicts() -> dict[int, str]:
    """Every BackendDict (moto's per-service registry) in a loaded moto module, by id → "module:attribute";
    a registry re-exported by several modules gets the first name in sorted order."""
    from moto.core.base_backend import BackendDict

    names: dict[int, str] = {}
    for module_name in sorted(name for name in sys.modules if name.startswith("moto.")):
        module = sys.modules[module_name]
        for attribute, value in list(getattr(module, "__dict__", {}).items()):
            if isinstance(value, BackendDict) and id(value) not in names:
                names[id(value)] = f"{module_name}:{attribute}"
    return names


def _resolve(name: str):
    module_name, _, attribute = name.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def capture(blobs: Blobs, seq: int) -> bytes:
    """The snapshot of moto as it is now (call it holding the backend's lock)."""
    from moto.core.base_backend import BackendDict

    _watch_s3_bodies()
    by_id = _backend_dicts()
    state = {by_id[id(backend_dict)]: dict(backend_dict) for backend_dict in BackendDict._instances if id(backend_dict) in by_id}
    buffer = io.BytesIO()
    header = dict(versions(), seq=seq, services=sorted(state))
    buffer.write(json.dumps(header).encode() + b"\n")
    _Pickler(buffer, blobs, by_id).dump(state)
    return buffer.getvalue()


def save(path: Path, data: bytes) -> None:
    write_atomic(path, data)


def read_header(path: Path) -> dict | None:
    try:
        with path.open("rb") as handle:
            return json.loads(handle.readline())
    except FileNotFoundError:
        return None
    except ValueError:
        return {}


def load(path: Path, blobs: Blobs) -> Loaded | None:
    """Reads a snapshot; None when there is none; SnapshotRefused when it cannot be used."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    first_line, _, payload = data.partition(b"\n")
    try:
        header = json.loads(first_line)
    except ValueError:
        raise SnapshotRefused(f"the snapshot {path.name} is damaged (no readable header)") from None
    expected = versions()
    differing = [f"{key} {header.get(key)} (this is {value})" for key, value in expected.items() if header.get(key) != value]
    if differing:
        raise SnapshotRefused(f"the snapshot {path.name} was written by another version: " + ", ".join(differing))
    global _loading_blobs
    _watch_s3_bodies()
    _loading_blobs = blobs
    try:
        backends = _Unpickler(io.BytesIO(payload)).load()
    except Exception as error:  # any failure to read it means: do not trust it
        raise SnapshotRefused(f"the snapshot {path.name} cannot be read ({type(error).__name__}: {error})") from None
    finally:
        _loading_blobs = None
    return Loaded(int(header["seq"]), backends)


def install(loaded: Loaded) -> None:
    """Puts the snapshot's state into moto's live registries (module-level names keep pointing at them)."""
    from moto.core.base_backend import BackendDict

    for name, accounts in loaded.backends.items():
        backend_dict = _resolve(name)
        dict.clear(backend_dict)
        dict.update(backend_dict, accounts)
        if backend_dict not in BackendDict._instances:
            BackendDict._instances.append(backend_dict)
