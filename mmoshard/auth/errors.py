"""The auth role's stable error codes, their HTTP status and meaning."""

from mmoshard.web.errors import ErrorCodes, retryAfter

AUTH_ERRORS = ErrorCodes({
    "request.too_large": (400, "the body is over [auth] max_body bytes"),
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
    "server.maintenance": (503, "a maintenance window is open: only operators log in; the "
                                "message is the window's, Retry-After says when it ends"),
    "auth.operator_required": (403, "the account is not an operator"),
})
ERRORS = AUTH_ERRORS.codes
error = AUTH_ERRORS.error

__all__ = ["AUTH_ERRORS", "ERRORS", "error", "retryAfter"]
