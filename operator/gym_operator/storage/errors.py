"""Storage errors as one line a user can act on: the object, the cause and the fix.

botocore's exceptions name the operation, not the object, and say nothing of where the
credentials or the endpoint come from; `explain` turns them (and local file errors) into
`<object>: <cause>. <what to set>`. Returns None for errors that are not about storage.
"""

from __future__ import annotations

from typing import Any

CREDENTIALS_FIX = (
    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) here, or "
    "spec.s3.credentialsSecretRef in a cluster"
)
ENDPOINT_FIX = (
    "check spec.s3.endpointURL (or AWS_ENDPOINT_URL) and that the S3 endpoint is reachable"
)
_CLIENT_CODES: dict[str, str] = {
    "AccessDenied": "access denied; " + CREDENTIALS_FIX + " with rights on this bucket",
    "InvalidAccessKeyId": "the access key is not known to this endpoint; " + CREDENTIALS_FIX,
    "SignatureDoesNotMatch": "the secret key does not match the access key; " + CREDENTIALS_FIX,
    "NoSuchBucket": "the bucket does not exist; create it or fix the URI",
    "403": "access denied; " + CREDENTIALS_FIX + " with rights on this bucket",
}


def explain(exc: BaseException) -> str | None:
    """One line for a storage error (object, cause, fix), or None when it is not one."""
    where = _object_of(exc)
    name = type(exc).__name__
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        return f"{where}: no S3 credentials were found; {CREDENTIALS_FIX}."
    if name == "ProfileNotFound":
        return f"{where}: {exc}; fix or unset AWS_PROFILE (or add the profile to ~/.aws/config)."
    if name in ("EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError"):
        return f"{where}: cannot reach the S3 endpoint ({exc}); {ENDPOINT_FIX}."
    if name == "ClientError":
        code = str(_response(exc).get("Error", {}).get("Code", ""))
        cause = _CLIENT_CODES.get(code, f"S3 answered {code or 'an error'}; {ENDPOINT_FIX}")
        return f"{where}: {cause}."
    if isinstance(exc, PermissionError):
        return f"{exc.filename or where}: permission denied; choose a path you may write to."
    if isinstance(exc, IsADirectoryError | NotADirectoryError):
        return f"{exc.filename or where}: {exc.strerror}; check the path."
    return None


def _object_of(exc: BaseException) -> str:
    """The object named by a `while <action> <uri>` note (see storage.store), else `S3`."""
    for note in getattr(exc, "__notes__", None) or []:
        if note.startswith("while "):
            return note.rsplit(" ", 1)[-1]
    return "S3"


def _response(exc: BaseException) -> dict[str, Any]:
    response = getattr(exc, "response", None)
    return response if isinstance(response, dict) else {}
