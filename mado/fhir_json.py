"""Reading FHIR JSON defensively: a member of the wrong type is absent, never an exception.

A manifest is input from another community; each accessor returns an empty list or None
where a member is missing or not of the JSON type FHIR gives it, so the reader reports
findings instead of raising on a malformed document.
"""

from __future__ import annotations

from typing import Any

from mado.normalise import to_text

__all__ = ["JSON", "dicts", "extension", "index", "list_member", "ref", "resources"]

JSON = dict[str, Any]


def resources(document: JSON) -> list[JSON]:
    """The resources of a Bundle's entries, in order."""
    return [
        e["resource"]
        for e in list_member(document, "entry")
        if isinstance(e, dict) and isinstance(e.get("resource"), dict)
    ]


def index(document: JSON) -> dict[str, JSON]:
    """Resources by every name a reference may use: fullUrl and ``Type/id``."""
    found: dict[str, JSON] = {}
    for entry in list_member(document, "entry"):
        if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
            continue
        resource = entry["resource"]
        if isinstance(entry.get("fullUrl"), str):
            found[entry["fullUrl"]] = resource
        if resource.get("resourceType") and resource.get("id"):
            found[f"{resource['resourceType']}/{resource['id']}"] = resource
    return found


def list_member(obj: object, key: str) -> list[Any]:
    """``obj[key]`` when ``obj`` is an object and the member a list, else ``[]``."""
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, list) else []


def dicts(obj: object, key: str) -> list[JSON]:
    """The JSON objects in a list member; anything else in the list is not a resource part."""
    return [item for item in list_member(obj, key) if isinstance(item, dict)]


def ref(reference: object) -> str | None:
    """The target of a Reference, or None."""
    return to_text(reference.get("reference")) if isinstance(reference, dict) else None


def extension(obj: object, url: str) -> list[JSON]:
    """The extensions of ``obj`` with this ``url``."""
    return [e for e in list_member(obj, "extension") if isinstance(e, dict) and e.get("url") == url]
