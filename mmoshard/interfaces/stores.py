"""Contracts of the shard's stores and registry: roles, SQL, the volatile store, the directory."""

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

    def groupBySlot(keys):
        """
        Split C{keys} (unprefixed str) into the groups one script or
        multi-key command may take together: one group per hash slot on a
        Redis Cluster, every key in one group on a single Redis or the
        memory store (so batching callers keep one round trip there).
        Synchronous, no I/O; keys keep their order within a group, groups
        come in the order of their first key.

        @return: a list of non-empty lists (empty for no keys).
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

    def dedicated(poolsize=1):
        """
        @return: a store on the same backend, prefix and timeouts with
            C{poolsize} connections of its own, not opened (its caller
            opens and closes it): for requests that must not wait behind
            this store's, such as a matchmaking lease in a reconnection
            storm.  A store without connections (memory) returns itself,
            which its caller must not close.
        """


class IDraining(Interface):
    """
    A role service with work to hand to other nodes before its node stops
    (SIGTERM): the node calls L{drain} on each such role, waiting at most
    C{drainDeadline} seconds for it, before it stops any service.
    """

    drainDeadline = Attribute("float: seconds the node waits for drain() at most.")

    def drain():
        """
        Hand this node's work over (or let it finish); the sessions and
        stores are still up.  @return: a Deferred firing when done.
        """


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

    def beat():
        """
        Write this process's entry now, not at the next heartbeat (a
        draining node withdraws what it published at once).

        @return: an awaitable, done when written (store outages are logged).
        """

    def addInfoSource(name, source):
        """
        Show C{source()} (JSON-serialisable) under C{name} in this process's
        entry's C{info}, read at each heartbeat (the session counts the
        operator console shows).
        """
