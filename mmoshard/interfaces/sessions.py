"""Contracts of the session layer and the sites: tokens, the gate, sessions, routing, HTTP sites."""

from zope.interface import Attribute, Interface


class ITokenVerifier(Interface):
    """Checks access tokens issued by any auth process, and hears of revocations."""

    def verify(token):
        """
        @param token: the access token (str).
        @return: a Deferred firing with L{mmoshard.tokens.Claims}, or failing
            with L{mmoshard.tokens.InvalidToken} when the token is malformed,
            forged, expired or revoked, or with
            L{mmoshard.store.errors.VolatileUnavailable} when revocations
            cannot be known now (it fails closed).
        """

    def checkRevoked(claims):
        """
        Check only revocation, for claims verified earlier (a resume).

        @return: a Deferred firing with None, or failing with C{InvalidToken}
            or C{VolatileUnavailable} as L{verify} does.
        """

    def isRevoked(claims):
        """@return: whether C{claims} are revoked as far as this process knows now (no I/O)."""

    def addRevocationObserver(observer):
        """
        Call C{observer(sids, accounts, reason)} for each batch of new
        revocations: C{sids} a set of login ids, C{accounts} a dict of
        account id -> revoked-before time, C{reason} a str or None.
        """

    def removeRevocationObserver(observer):
        """Stop calling C{observer}."""


class IClientGate(Interface):
    """
    Decides whether a client may open a session now: its build and
    maintenance windows.  Allow-all unless a version role publishes rules.
    """

    def check(claims, clientVersion, platform):
        """
        @return: a Deferred firing with None when the client may proceed, or
            with a L{mmoshard.wire.messages.ErrorInfo} (code, message and
            optional retry-after) saying why not.
        """

    def maintenance():
        """
        @return: the L{mmoshard.gate.Maintenance} window open now (published
            with a release or opened by an operator), or None: logins and
            handshakes of non-operators are refused during one.
        """


class ISession(Interface):
    """One client's session on the session protocol."""

    sessionId = Attribute("str")
    accountId = Attribute("int")
    claims = Attribute("mmoshard.tokens.Claims of the handshake token.")
    linkDead = Attribute("bool: the connection is gone, the session is not.")
    ended = Attribute("bool: the session is over; sends are dropped.")

    def send(type, body, replayable=True):
        """
        Queue a server-to-client message C{{t: type, **body}}; replayable ones
        carry a sequence number and are kept for resume.
        """

    def sendEncoded(payload, type):
        """
        Queue a non-replayable message the caller encoded itself: C{payload}
        is the msgpack map, with C{t} equal to C{type} (used for metrics).
        For hot paths that build the same shape of message many times a
        tick; dropped while link-dead.
        """

    def close(code=None, message=None):
        """End the session, sending an error C{code} first when given."""


class ISessionListener(Interface):
    """A role's hooks on session lifetime."""

    def sessionStarted(session):
        """A handshake completed."""

    def sessionLinkDead(session):
        """The connection dropped; the session may still resume."""

    def sessionResumed(session):
        """A link-dead session was resumed."""

    def sessionMoved(session, fromNode):
        """
        A session another node of the role held (node C{fromNode}: stopped,
        crashed or left behind) was resumed here.  The player never left:
        restore what the role keeps per session without announcing a
        login.  On C{fromNode} the session ends with reason C{moved},
        which is no logout either.
        """

    def sessionEnded(session, reason):
        """
        The session is over (logout, replaced, grace period expired, server
        stop), or C{moved}: it went on on another node (L{sessionMoved}
        there), so this node lets go of it without announcing a logout.
        C{reason} is a short str.
        """


class IMessageRouter(Interface):
    """
    The session protocol's dispatch table, shared by TCP and WebSocket.
    """

    def addHandlers(namespace, handlers):
        """
        Register C{handlers}, a dict of full message type (e.g.
        C{"chat.whisper"}) to C{handler(session, message)}, where C{message}
        is the decoded dict.  A handler returns (or fires a Deferred with) a
        dict body for the reply, or None for no reply.  Every type must start
        with C{namespace + "."}.
        """

    def addListener(listener):
        """Register an L{ISessionListener}."""


class ISite(Interface):
    """An HTTP site roles mount their resources into (never registered itself)."""

    root = Attribute("the site's root Resource")

    def putChild(path, resource):
        """Mount C{resource} at C{/path} (bytes) on the site."""

    def mount(segments, resource):
        """
        Mount C{resource} at C{/a/b/...} for C{segments} C{(b"a", b"b", ...)},
        creating (or sharing, whichever role mounts first) the folders on the
        way, which answer unknown children with a typed 404.
        """

    def addOpenAPI(source):
        """
        Add C{source}, a callable returning an OpenAPI 3 document, to the
        site's merged C{/openapi.json}.
        """


class IWebSite(ISite):
    """The shared public HTTP site."""


class IAdminSite(ISite):
    """
    The admin HTTP site, bound to 127.0.0.1.  Not an L{IWebSite}: a node
    without a public site must not hand the admin site to a role asking
    for the public one.
    """


class IOperatorLogin(Interface):
    """
    Logs operators in to the admin site with their account's password (the
    auth role provides it; the admin site's C{/operator/session} asks it).
    """

    def login(username, password, ip, userAgent):
        """
        @return: a Deferred firing with a L{mmoshard.web.operators.OperatorToken}
            (an access token with the C{operator} flag, from a new login of
            the account), or failing with an L{mmoshard.web.json.HTTPError}:
            C{auth.invalid_credentials}, C{auth.operator_required} (not an
            operator account), C{account.banned}, C{auth.locked},
            C{auth.rate_limited} or C{auth.busy}.
        """

    def logout(claims, ip):
        """
        End the login of C{claims} (an operator's): its tokens are revoked
        everywhere.

        @return: a Deferred firing with None.
        """
