"""The contracts roles and core services share, as zope interfaces."""

from zope.interface import Attribute, Interface


class IRole(Interface):
    """
    A role plugin: one capability of the node (auth, chat, world, ...).

    Role plugins are module-level objects in modules of the
    C{mmoshard.plugins} package, found with
    C{twisted.plugin.getPlugins(IRole, mmoshard.plugins)}.  A third-party
    package adds a role by shipping a module in its own C{mmoshard/plugins/}
    directory (without an C{__init__.py}).  Plugins also provide
    C{twisted.plugin.IPlugin}; L{mmoshard.role.Role} does both.
    """

    name = Attribute("str: the role's name, as used in --roles and config.")
    configSection = Attribute(
        "str: the name of the TOML table holding this role's settings."
    )
    provides = Attribute(
        "Sequence of interfaces this role registers in the node registry."
    )
    requires = Attribute(
        "Sequence of interfaces this role needs, given to its factory; "
        "start-up stops when one has no provider among the core services "
        "and the selected roles."
    )
    transports = Attribute(
        "frozenset of str, a subset of {'http', 'session'}: the shared "
        "listeners this role uses. A listener is opened only when a hosted "
        "role uses it."
    )

    def parseConfig(section, path):
        """
        Turn this role's raw TOML table into its frozen config object.

        @param section: the dict read from the table (empty when absent).
        @param path: the key path of the table, e.g. C{"auth"}, for messages.
        @return: the role's config object.
        @raise mmoshard.config.ConfigError: with every problem found, each
            naming its key path.
        """

    uses = Attribute(
        "Sequence of interfaces this role takes when something in the node "
        "provides them, and does without otherwise (e.g. IWebSite)."
    )

    def makeService(ctx):
        """
        Build the role's service, with no I/O.  Called once the core parts
        exist (not yet started) and after every role whose C{provides} this
        role C{requires} or C{uses}; the role registers what it provides
        with C{ctx.provide} and gets what it requires with C{ctx.require}
        and C{ctx.optional}, passing it to its service's constructor.

        @param ctx: a L{mmoshard.role.RoleContext}.
        @return: an C{IService}; its C{startService} may return a Deferred.
            It is started after the core services and before the listeners,
            and stopped in reverse order.
        """


class ISQLStore(Interface):
    """
    The process's one SQL connection pool (MySQL/MariaDB or SQLite).

    Thread-side functions get a L{mmoshard.store.sql.Cursor} whose
    C{execute(sql, params)} takes C{?} placeholders on both dialects.
    """

    dialect = Attribute("str: 'mysql' or 'sqlite'.")

    def open():
        """Start the pool: until then it does no I/O and calls fail with StoreNotOpen."""

    def runInteraction(func, *args, **kwargs):
        """
        Run C{func(cursor, *args, **kwargs)} in a pool thread inside one
        transaction, committed when it returns, rolled back when it raises.

        @return: a Deferred firing with what C{func} returned, or failing
            with L{mmoshard.store.errors.SQLUnavailable} when the database
            cannot be reached or has not answered within the store's
            deadline (the transaction is then not started or rolled back,
            unless its commit was already sent: it may have been applied),
            L{mmoshard.store.errors.IntegrityError} on a
            constraint violation, or the exception C{func} raised.
        """

    def runQuery(sql, params=()):
        """
        Run one statement in its own transaction.

        @return: a Deferred firing with the list of result rows (tuples).
        """

    def ping():
        """
        Check that the database answers.

        @return: a Deferred firing with None, or failing with
            L{mmoshard.store.errors.SQLUnavailable}.
        """

    def close():
        """
        Close the pool.

        @return: a Deferred firing when every connection is closed.
        """


class ISubscription(Interface):
    """A live pub/sub subscription to one channel."""

    channel = Attribute("str: the channel name (without the store prefix).")

    def unsubscribe():
        """
        Stop delivering messages to this subscription.

        @return: a Deferred firing with None.
        """


class IVolatileStore(Interface):
    """
    Volatile and cross-process state: Redis, or memory for one process.

    Every method returns a Deferred.  Keys, hash fields, set and sorted-set
    members are C{str}; values (C{get}, hash values, pub/sub payloads) come
    back as C{bytes}; values passed in may be C{str}, C{bytes}, C{int} or
    C{float}.  Every key and channel is namespaced by the store's prefix.
    Any call fails with L{mmoshard.store.errors.VolatileUnavailable} within
    the configured timeout when the backend cannot be reached.
    """

    def open():
        """Start the connections in the background; otherwise as L{ISQLStore.open}."""

    def ping():
        """@return: a Deferred firing with None when the backend answers."""

    def get(key):
        """@return: a Deferred firing with the value (bytes) or None."""

    def set(key, value, ttl=None, nx=False):
        """
        Store C{value} under C{key}, expiring after C{ttl} seconds (float) if
        given.  With C{nx=True} only when C{key} does not exist.

        @return: a Deferred firing with True when the value was stored.
        """

    def delete(*keys):
        """@return: a Deferred firing with the number of keys removed."""

    def expire(key, ttl):
        """
        Set C{key} to expire after C{ttl} seconds.

        @return: a Deferred firing with True if the key exists.
        """

    def ttl(key):
        """
        @return: a Deferred firing with the seconds left (float), None for a
            key without expiry, or -1.0 when the key does not exist.
        """

    def incr(key, amount=1, ttl=None):
        """
        Add C{amount} to the integer at C{key} (0 when absent).  When C{ttl} is
        given and the key had no expiry, it expires after C{ttl} seconds.

        @return: a Deferred firing with the new value (int).
        """

    def hset(key, mapping):
        """
        Set several fields of the hash at C{key}.

        @return: a Deferred firing with the number of new fields.
        """

    def hget(key, field):
        """@return: a Deferred firing with the value (bytes) or None."""

    def hgetall(key):
        """@return: a Deferred firing with a dict of str field -> bytes."""

    def hdel(key, *fields):
        """@return: a Deferred firing with the number of fields removed."""

    def hincrby(key, field, amount=1):
        """@return: a Deferred firing with the new value (int)."""

    def sadd(key, *members):
        """@return: a Deferred firing with the number of members added."""

    def srem(key, *members):
        """@return: a Deferred firing with the number of members removed."""

    def smembers(key):
        """@return: a Deferred firing with a set of str."""

    def sismember(key, member):
        """@return: a Deferred firing with a bool."""

    def zadd(key, mapping):
        """
        Add or update members with scores, C{mapping} being str -> float.

        @return: a Deferred firing with the number of new members.
        """

    def zrem(key, *members):
        """@return: a Deferred firing with the number of members removed."""

    def zscore(key, member):
        """@return: a Deferred firing with the score (float) or None."""

    def zcard(key):
        """@return: a Deferred firing with the number of members."""

    def zrangebyscore(key, min, max, offset=None, count=None, withscores=False):
        """
        Members with C{min <= score <= max}, lowest score first (ties by
        member).  C{min}/C{max} may be C{float('-inf')}/C{float('inf')}.

        @return: a Deferred firing with a list of str, or with a list of
            (str, float) pairs when C{withscores}.
        """

    def keys(pattern):
        """
        Keys (without prefix) matching a glob C{pattern}, for operator tools
        and small sets only: it scans.

        @return: a Deferred firing with a list of str.
        """

    def publish(channel, message):
        """
        Send C{message} (bytes) to every subscriber of C{channel}, in every
        process sharing the backend.

        @return: a Deferred firing with the number of receiving connections
            (Redis) or subscriptions (memory).
        """

    def subscribe(channel, callback):
        """
        Call C{callback(channel, message)} for each message published on
        C{channel} (str, bytes).  Subscriptions survive a reconnect.

        @return: a Deferred firing with an L{ISubscription} once the
            subscription is active.
        """

    def evalScript(script, keys, args):
        """
        Run an L{mmoshard.store.volatile.Script} atomically: its Lua source on
        Redis, its Python function on the memory store.  C{keys} are
        prefixed; C{args} are passed as given.

        @return: a Deferred firing with the script's result.
        """

    def close():
        """@return: a Deferred firing when connections are closed."""


class IDirectory(Interface):
    """Where each role lives: one entry per running process, kept by TTL."""

    def list():
        """
        @return: a Deferred firing with a list of
            L{mmoshard.directory.DirectoryEntry}, one per live process.
        """

    def endpointsFor(role):
        """
        @return: a Deferred firing with the list of entries hosting C{role},
            least loaded first.
        """

    def addLoadSource(name, source):
        """
        Report C{source()} (a number) under C{name} in this process's entry
        at each heartbeat; an entry's total load is their sum.
        """

    def publish(name, value):
        """
        Show C{value} (JSON-serialisable) under C{name} in this process's
        entry's C{info}, e.g. the zones a world process hosts.
        """


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

    def sessionEnded(session, reason):
        """
        The session is over (logout, replaced, grace period expired, server
        stop).  C{reason} is a short str.
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


class IZoneChannels(Interface):
    """
    Chat's zone channels, which the world role joins players to.  Provided by
    the chat role, else by the core (L{mmoshard.zonechat.StoreZoneChannels});
    works across processes through the volatile store.
    """

    def joinZone(characterId, zoneId):
        """
        Put character C{characterId} in the channel of zone C{zoneId}.

        @return: a Deferred firing with None.
        """

    def leaveZone(characterId, zoneId):
        """@return: a Deferred firing with None once the character left."""


class IParties(Interface):
    """Read access to chat's parties, for other roles (world today)."""

    def partyOf(characterId):
        """
        @return: a Deferred firing with the party id (str) of C{characterId},
            or None.
        """

    def members(partyId):
        """
        @return: a Deferred firing with the party's member character ids,
            leader first, or an empty list when the party does not exist.
        """


class IProgression(Interface):
    """Persistent character progression, written through at once."""

    def grantExp(characterId, amount, idempotencyKey):
        """
        Add C{amount} exp, applying level-ups, in one transaction.  A second
        call with the same C{idempotencyKey} changes nothing.

        @return: a Deferred firing with the character's (level, exp) after it.
        """

    def addItem(characterId, itemId, count, idempotencyKey, slot=None):
        """
        Add C{count} of C{itemId} to the inventory, idempotently.

        @return: a Deferred firing with the inventory row id.
        """

    def removeItem(characterId, itemId, count, idempotencyKey):
        """
        Remove C{count} of C{itemId}, idempotently; fails with
        C{ValueError} when the character has fewer.

        @return: a Deferred firing with the count left.
        """

    def moveItem(characterId, fromSlot, toSlot, idempotencyKey):
        """
        Move (or swap) the items in two inventory slots, idempotently.

        @return: a Deferred firing with None.
        """


class IInterestSpace(Interface):
    """
    One zone's area of interest and replication state: where each entity
    is, what each observer sees, and the updates a tick sends.  Two
    implementations pass the same contract tests: the pure-Python
    L{mmoshard.world.interest.PySpace} and the C
    L{mmoshard.world._space.Space}.

    An entity has C{id} (uint32), C{x}, C{z}, C{vx}, C{vz}, C{ct} and
    C{session} (an L{ISession} for observers, else None) and a C{slot}
    attribute the space owns.  An observer sees what lies within C{radius}
    of it and stops seeing it beyond C{radius + hysteresis}.  Synchronous:
    nothing here blocks or returns a Deferred.
    """

    native = Attribute("True for the C implementation, False for PySpace.")

    def add(entity):
        """
        Put C{entity} in the space at its C{(x, z)}; it is an observer when
        its C{session} is not None.  It sees nothing until it is recomputed
        (pass it in C{forced} to the next L{update}).

        @raise ValueError: C{entity} is already in the space.
        @raise OverflowError: its id does not fit in uint32.
        """

    def remove(entity):
        """
        Take C{entity} out.  Observers that saw it get its id as a leave in
        their next update; as an observer it forgets everything it saw.
        """

    def move(entity):
        """
        C{entity}'s C{x}, C{z}, C{vx}, C{vz} or C{ct} changed: the space
        takes them now (a later change counts only with another C{move}),
        and the move record of the newest C{move} of the tick goes to the
        observers that see it in the next L{replicate}.

        @raise ValueError: C{entity} is not in the space.
        """

    def moved():
        """@return: a list of the entities moved since the last L{replicate}."""

    def update(tick, interval, forced):
        """
        Recompute the visible sets of the observers due at C{tick} (those
        in cells C{c} with C{c % interval == tick % interval}) and of the
        observers in the iterable C{forced}, recording enters and leaves.
        """

    def replicate():
        """
        Collect this tick's updates and clear the moved entities.

        @return: C{(sends, others, movesBytes)}: C{sends} a list of
            C{(session, payload)} with the encoded C{world.u} of each
            observer that only has moves of what it already sees;
            C{others} a list of C{(entity, enters, leaves, moves)} for the
            observers with enters or leaves (lists of ids; C{moves} the
            packed records of the moved entities it sees and did not just
            enter, or C{b""}); C{movesBytes} the size of the packed moves in
            C{sends}.
        """

    def reset(entity):
        """Observer C{entity} forgets what it sees and has pending (a resumed session)."""

    def visible(entity):
        """@return: the set of ids observer C{entity} sees."""

    def watchers(entity):
        """@return: the set of observer entities that see C{entity}."""

    def cell(entity):
        """@return: the grid cell index of C{entity}, -1 when not in the space."""

    def pairs():
        """@return: the number of (observer, visible entity) pairs."""
