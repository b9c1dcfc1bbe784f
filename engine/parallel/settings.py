"""Where a session's parallel setting comes from: its backend and worker count stored in the
session, signed with this user's key; a cluster's address only ever from the user's own
settings (``$WORKBENCH_*_ADDRESS``, else ``parallel.toml``), never from a session."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from engine.errors import ParallelError
from engine.parallel.config import ParallelConfig, backend_from_config, check_installed

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (requires-python's floor) has no tomllib
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]  # pyproject: tomli for python < 3.11

# the session's setting lives in its params table under this name (it is no analysis)
CONFIG_SCOPE = "workbench.parallel"
USER_SETTINGS_ENV = "WORKBENCH_PARALLEL_CONFIG"  # path of the user's parallel.toml
ADDRESS_ENV = {"dask": "WORKBENCH_DASK_ADDRESS", "ray": "WORKBENCH_RAY_ADDRESS"}


# --------------------------------------------------------------------------- the user's own settings


def user_settings_path() -> Path:
    """``$WORKBENCH_PARALLEL_CONFIG``, else ``parallel.toml`` in the user's config folder."""
    env = os.environ.get(USER_SETTINGS_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("workbench")) / "parallel.toml"


def _read_user_settings() -> dict[str, str]:
    path = user_settings_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ParallelError(f"{path}: cannot read the parallel settings ({exc})") from None
    known = {f"{b}_address" for b in ADDRESS_ENV}
    bad = sorted(set(data) - known) + sorted(k for k in set(data) & known if not isinstance(data[k], str))
    if bad:
        raise ParallelError(f"{path}: unknown or non-text setting(s) {bad} (known: {', '.join(sorted(known))})")
    return data


def user_address(backend: str) -> tuple[str | None, str]:
    """(address, where it came from) of ``backend``'s cluster in the user's own settings;
    (None, "local") when none is set."""
    if backend not in ADDRESS_ENV:
        return None, "local"
    env = os.environ.get(ADDRESS_ENV[backend], "").strip()
    if env:
        return env, f"${ADDRESS_ENV[backend]}"
    addr = _read_user_settings().get(f"{backend}_address", "").strip()
    return (addr, str(user_settings_path())) if addr else (None, "local")


def set_user_address(backend: str, address: str | None) -> Path:
    """Store (``None``: forget) the address of ``backend``'s cluster in the user's settings."""
    if backend not in ADDRESS_ENV:
        raise ParallelError(f"an address needs the dask or ray backend, not {backend!r} (loky runs on this machine)")
    if address is not None and (not address.strip() or any(c in address for c in "\"\n\r")):
        raise ParallelError(f"not a usable address: {address!r}")
    data = _read_user_settings()
    key = f"{backend}_address"
    if address is None or address.strip().lower() in ("local", "none"):
        data.pop(key, None)
    else:
        data[key] = address.strip()
    path = user_settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "# cluster addresses for `workbench parallel` (yours; never read from a session)\n"
    body += "".join(f"{k} = {json.dumps(v)}\n" for k, v in sorted(data.items()))
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(body, encoding="utf-8")
    os.replace(tmp, path)
    return path


def _user_key() -> bytes:
    """This user's signing key (created on first use, readable by the user only)."""
    path = user_settings_path().with_name("parallel.key")
    try:
        key = path.read_bytes()
        if len(key) >= 32:
            return key
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ParallelError(f"cannot read the signing key {path}: {exc}") from None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(32))
        return path.read_bytes()
    except OSError as exc:
        raise ParallelError(f"cannot keep a signing key in {path} ({exc}); parallel settings stay local") from None


def _signature(session, backend: str, n_workers: int | None) -> str:
    """Binds a setting to this user and this session's folder: copied elsewhere, or written
    by someone else, it no longer verifies."""
    msg = f"{Path(session.path).resolve()}|{backend}|{n_workers}".encode()
    return hmac.new(_user_key(), msg, hashlib.sha256).hexdigest()


# --------------------------------------------------------------------------- a session's setting


def _stored(session) -> tuple[ParallelConfig, str | None]:
    """(the setting to use, why the stored one was set aside or None)."""
    try:
        values = dict(session.params(CONFIG_SCOPE))
    except (ValueError, TypeError):  # a row that is not JSON (hand-edited)
        values = {"backend": "?", "signature": None}
    if not values:
        return ParallelConfig(), None
    backend, n, sig = values.get("backend") or "loky", values.get("n_workers"), values.get("signature")
    try:
        signed = isinstance(sig, str) and hmac.compare_digest(sig, _signature(session, str(backend), n))
    except (ParallelError, TypeError):  # no key here, or a non-ASCII "signature": nothing verifies
        signed = False
    if values.get("address"):
        why = f"it named a cluster address ({_short(values['address'])}), which is never taken from a session"
    elif not signed:
        if backend == "loky":
            return ParallelConfig(), None  # nothing to reset: only a worker count not set by you, dropped
        why = "it was not set by you on this machine"
    else:
        try:
            return ParallelConfig(backend=str(backend), n_workers=n), None
        except ParallelError as exc:
            why = str(exc)
    return ParallelConfig(), (f"session {_short(session.name)}: its parallel backend {_short(backend)!r} was reset to "
                              f"loky (local): {why}; choose one with `workbench parallel set backend ...`")


def _short(value: Any) -> str:
    from engine.text import safe_line

    text = safe_line(value)
    return text if len(text) <= 60 else text[:59] + "…"


def load_config(session) -> ParallelConfig:
    """The session's setting with the cluster address from the user's own settings; a
    setting this user did not make gives loky (see :func:`notice`)."""
    cfg, _ = _stored(session)
    if cfg.backend == "loky":
        return cfg
    address, _ = user_address(cfg.backend)
    return ParallelConfig(cfg.backend, address, cfg.n_workers)


def notice(session, reset: bool = True) -> str | None:
    """One line when the session's stored setting is not used (made elsewhere), else None.

    With ``reset`` the stored setting is replaced by loky where the session is writable,
    so that the line is said once."""
    _, why = _stored(session)
    if why and reset and not getattr(session, "readonly", False):
        with contextlib.suppress(Exception):
            session.set_params(CONFIG_SCOPE, {"backend": "loky", "address": None, "n_workers": None,
                                              "signature": None})
    return why


def save_config(session, **changes: Any) -> ParallelConfig:
    """Validate and store a session's parallel setting; returns the whole new setting.

    ``address`` goes to the user's own settings (for the session's backend, or the
    ``backend`` given with it), never into the session.  Switching to ``loky`` leaves
    the user's addresses alone (they are not the session's)."""
    cfg, _ = _stored(session)
    merged = {"backend": cfg.backend, "n_workers": cfg.n_workers, **changes}
    address = merged.pop("address", None)
    new = backend_from_config(merged)
    if isinstance(address, str) and address.strip().lower() in ("", "none", "local"):
        address = None
    if address is not None and not isinstance(address, str):
        raise ParallelError(f"address must be text such as tcp://host:8786, got {address!r}")
    has_address = address is not None
    if has_address and new.backend == "loky":
        raise ParallelError("an address needs the dask or ray backend (loky runs on this machine)")
    check_installed(new.backend)  # jobs run here: say now, not at their first parallel loop
    if "address" in changes and new.backend != "loky":
        set_user_address(new.backend, address if has_address else None)
    session.set_params(CONFIG_SCOPE, {"backend": new.backend, "n_workers": new.n_workers, "address": None,
                                      "signature": _signature(session, new.backend, new.n_workers)})
    return load_config(session)
