"""Error codes of the REST API: each role's table of code -> (HTTP status, meaning), on one shared base."""

from mmoshard.web.json import HTTPError

# What any router may answer, whichever role it serves.
COMMON = {
    "request.malformed_json": (400, "the body is not a JSON object"),
    "request.too_large": (413, "the body is over the size limit"),
    "request.invalid_text": (400, "a header, the path, a query parameter or a string of the "
                             "body is not UTF-8 text (invalid bytes, a lone surrogate)"),
    "request.invalid": (400, "unknown, missing or bad fields; `fields` says which and why"),
    "request.not_found": (404, "no such path"),
    "request.method_not_allowed": (405, "the path does not take this method"),
    "auth.invalid_token": (401, "missing, malformed, expired or revoked access token"),
    "service.unavailable": (503, "a database is not answering; retry after Retry-After"
                                 " (also the body's retry_after)"),
    "internal": (500, "a bug: logged on the server"),
}

# What the admin site's guard (web/guard.py) answers, before any route runs.
ADMIN_SITE = {
    "request.bad_host": (403, "admin site: Host is not the admin address (127.0.0.1, localhost "
                              "or [::1] with the admin port): a DNS-rebinding page"),
    "request.forbidden_origin": (403, "admin site: a state-changing request from another "
                                      "origin (Origin, Sec-Fetch-Site): a cross-site page"),
    "request.unsupported_media_type": (415, "admin site: a state-changing request whose body "
                                            "is not sent as application/json"),
    "auth.operator_required": (403, "admin site off loopback: the access token is not an "
                                    "operator's"),
}


# Seconds every role tells a client to wait when a store (SQL or the volatile
# store) did not answer within its deadline: Retry-After and retry_after.
UNAVAILABLE_RETRY_AFTER = 1


class ErrorCodes:
    """
    One role's error codes: L{COMMON} with its own added (or restated with
    its own status or meaning).  Errors are answered as
    C{{"error": {"code", "message", "fields"?}}} with the code's status.
    """

    def __init__(self, codes):
        self.codes = {**COMMON, **codes}

    def __contains__(self, code):
        return code in self.codes

    def status(self, code):
        """@return: the HTTP status of C{code}."""
        return self.codes[code][0]

    def meaning(self, code):
        """@return: what C{code} means, as documented."""
        return self.codes[code][1]

    def unavailable(self, message=None):
        """@return: the 503 C{service.unavailable} every role answers when a store is down."""
        return self.error("service.unavailable", message,
                          headers=retryAfter(UNAVAILABLE_RETRY_AFTER))

    def error(self, code, message=None, fields=None, headers=None):
        """@return: the L{HTTPError} for C{code}, with its registered status."""
        status, meaning = self.codes[code]
        return HTTPError(status, code, message or meaning, fields=fields, headers=headers)


ADMIN_SITE_ERRORS = ErrorCodes(ADMIN_SITE)


def retryAfter(seconds):
    """@return: the Retry-After header for C{seconds}, rounded up, at least 1."""
    whole = int(seconds)
    if whole < seconds:
        whole += 1
    return {"Retry-After": max(1, whole)}
