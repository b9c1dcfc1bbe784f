"""What the store writes as JSON, and what it reads back as it may be shown: a session may
come from anyone, so text a job wrote reaches the terminal with its control characters
escaped (see engine.text)."""

from __future__ import annotations

import json
from typing import Any

from engine.atomic import _json_default
from engine.text import safe_line, safe_text


def dumps(obj: Any) -> str:
    return json.dumps(obj, default=_json_default, allow_nan=True)


def shown(text: str | None) -> str | None:
    """Text a job wrote (an error, a step name) as it may be shown."""
    return safe_text(text) if isinstance(text, str) else text


def shown_frame(frame: Any) -> Any:
    """A stored table with its labels and text cells escaped (they are shown as they are)."""
    def fix(v: Any) -> Any:
        return safe_line(v) if isinstance(v, str) else v

    frame.index = [fix(v) for v in frame.index]
    frame.columns = [fix(v) for v in frame.columns]
    for col in frame.columns:
        if getattr(frame[col].dtype, "kind", "O") not in "biufcmM":  # text (object or string dtype)
            frame[col] = frame[col].map(fix)
    return frame


def shown_payload(payload: Any) -> Any:
    if isinstance(payload, dict) and isinstance(payload.get("message"), str):
        payload["message"] = safe_text(payload["message"])
    return payload
