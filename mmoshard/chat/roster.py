"""The characters connected to this chat process, by id, session, name and channel."""

from mmoshard.chat import errors


class Roster:
    """
    This process's local characters (L{mmoshard.chat.users.ChatUser}):
    every part reads them here, and only L{add} and L{detach} change them.
    """

    def __init__(self):
        self.users = {}  # cid -> ChatUser
        self.bySession = {}  # session id -> ChatUser
        self.byName = {}  # lower-case name -> ChatUser
        self.channelLocal = {}  # channel -> set of local cids

    def __len__(self):
        return len(self.users)

    def userFor(self, session):
        """@return: the character C{session} said hello as; @raise ProtocolError: none."""
        user = self.bySession.get(session.sessionId)
        if user is None:
            raise errors.error(errors.NO_HELLO, "say chat.hello with a character first")
        return user

    def add(self, user):
        """Make C{user} the local character of its id, replacing an older session's."""
        old = self.users.get(user.cid)
        if old is not None and old.session is not user.session:
            self.detach(old)
            old.session.send("chat.replaced", {"character_id": old.cid}, False)
        self.users[user.cid] = user
        self.bySession[user.session.sessionId] = user
        self.byName[user.name.lower()] = user

    def detach(self, user):
        """Forget C{user} locally (its presence entry is left alone)."""
        if self.users.get(user.cid) is user:
            del self.users[user.cid]
        if self.bySession.get(user.session.sessionId) is user:
            del self.bySession[user.session.sessionId]
        if self.byName.get(user.name.lower()) is user:
            del self.byName[user.name.lower()]
        for channel in user.channels:
            self._forgetMember(channel, user.cid)
        if user.leaderTimer is not None and user.leaderTimer.active():
            user.leaderTimer.cancel()
        user.leaderTimer = None

    def joinChannel(self, user, channel):
        user.channels.add(channel)
        self.channelLocal.setdefault(channel, set()).add(user.cid)

    def leaveChannel(self, user, channel):
        user.channels.discard(channel)
        self._forgetMember(channel, user.cid)

    def _forgetMember(self, channel, cid):
        members = self.channelLocal.get(channel)
        if members is not None:
            members.discard(cid)
            if not members:
                del self.channelLocal[channel]
