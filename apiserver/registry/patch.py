"""Patch application for PATCH requests: JSON patch (RFC 6902), JSON merge patch (RFC 7386) and strategic
merge patch, each turning the current wire object into the patched one (server-side apply is
``apiserver.registry.apply``). Errors are the Status kube-apiserver answers for the same patch."""

from __future__ import annotations

import logging
from typing import Any

import jsonpatch

from api.mergepatch import merge_patch
from api.structure import schema_of
from apiserver import errors, limits
from apiserver.registry.strategicpatch import StrategicPatchError, strategic_merge_patch

logger = logging.getLogger(__name__)

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

__all__ = ["APPLY_PATCH", "JSON_PATCH", "MERGE_PATCH", "STRATEGIC_MERGE_PATCH", "apply_patch", "merge_patch"]


def apply_patch(patch_type: str, current: dict[str, Any], patch: Any, *, kind: str) -> Any:
    """The patched wire object (``kind`` names the schema strategic merge patch reads)."""
    if (
        patch_type in (MERGE_PATCH, STRATEGIC_MERGE_PATCH)
        and limits.nesting_depth(patch) > limits.MAX_DECODE_DEPTH
    ):
        raise errors.bad_request(f"error decoding patch: exceeded max depth of {limits.MAX_DECODE_DEPTH}")
    if patch_type == MERGE_PATCH:
        return merge_patch(current, patch)
    if patch_type == STRATEGIC_MERGE_PATCH:
        if not isinstance(patch, dict):
            raise errors.bad_request("the strategic merge patch must be a JSON object")
        try:
            return strategic_merge_patch(current, patch, schema_of(kind))
        except StrategicPatchError as exc:
            if exc.unprocessable:
                raise errors.invalid_generic() from None
            raise errors.bad_request(str(exc)) from None
    try:
        return limits.apply_json_patch(current, patch)
    except limits.PatchTooLargeError as exc:
        raise errors.request_entity_too_large(str(exc)) from None
    except limits.PatchCopyLimitError as exc:
        raise _invalid_patch(str(exc)) from None
    except jsonpatch.JsonPatchTestFailed as exc:
        raise _invalid_patch(str(exc)) from None
    except (jsonpatch.JsonPatchConflict, jsonpatch.JsonPointerException) as exc:
        raise _invalid_patch(str(exc)) from None
    except (jsonpatch.InvalidJsonPatch, TypeError, KeyError, AttributeError) as exc:
        raise errors.bad_request(f"invalid JSON patch: {exc}") from None


def _invalid_patch(message: str) -> errors.StatusError:
    """JSON patch application errors are 422 (``NewGenericServerResponse(422, …)``) without the message."""
    logger.debug("json patch does not apply", extra={"error": message})
    return errors.invalid_generic()
