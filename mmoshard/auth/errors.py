"""The auth role's stable error codes, their HTTP status and meaning."""

from mmoshard.web.json import HTTPError

ERRORS = {
    "request.malformed_json": (400, "the body is not a JSON object"),
    "request.too_large": (400, "the body is over [auth] max_body bytes"),
    "request.invalid": (400, "unknown, missing or bad fields; `fields` says which and why"),
    "request.not_found": (404, "no such path"),
    "request.method_not_allowed": (405, "the path does not take this method"),
    "auth.invalid_token": (401, "missing, malformed, expired or revoked access token"),
    "auth.invalid_credentials": (401, "wrong username or password"),
    "auth.invalid_refresh_token": (401, "unknown, expired or revoked refresh token"),
    "auth.refresh_token_reused": (401, "a used refresh token came back: the login is revoked"),
    "auth.wrong_password": (403, "the current password given is wrong"),
    "account.banned": (403, "the account is banned; `fields` has reason and until"),
    "account.username_taken": (409, "the username is in use (case-insensitively)"),
    "account.not_found": (404, "no such account"),
    "character.not_found": (404, "no such live character on this account"),
    "character.name_taken": (409, "the name is in use across the deployment"),
    "character.limit_reached": (409, "the account has its maximum number of characters"),
    "auth.locked": (429, "too many failed logins for this username; see Retry-After"),
    "auth.rate_limited": (429, "too many requests from this address; see Retry-After"),
    "auth.busy": (503, "password hashing is saturated; retry after Retry-After"),
    "service.unavailable": (503, "a database is not answering; retry after Retry-After"),
    "internal": (500, "a bug: logged on the server"),
}


def error(code, message=None, fields=None, headers=None):
    """@return: the L{HTTPError} for C{code}, with its registered status."""
    status, meaning = ERRORS[code]
    return HTTPError(status, code, message or meaning, fields=fields, headers=headers)


def retryAfter(seconds):
    """@return: the Retry-After header for C{seconds}, rounded up, at least 1."""
    whole = int(seconds)
    if whole < seconds:
        whole += 1
    return {"Retry-After": max(1, whole)}
