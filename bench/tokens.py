"""Issue and check cost of access and refresh tokens in two checkouts, in one invocation: python3 bench/tokens.py OLD_ROOT NEW_ROOT."""

import json
import subprocess
import sys

# Each checkout's mmoshard is imported in a child process of its own (both are
# "mmoshard"), with the same inputs; the old API (mmoshard/auth/issue.py,
# before commit b013904) is measured too, for comparisons across that change.
CODE = r'''
import sys, timeit, json
sys.path.insert(0, sys.argv[1])
from mmoshard import tokens
KEY = "bench-key-0123456789abcdef"
now = 1_800_000_000.0
if hasattr(tokens, "AccessTokens"):
    a = tokens.AccessTokens(KEY); r = tokens.RefreshTokens(KEY)
    issue = lambda: a.issue(7, "sid-abcdefghijklmnop", 900.0, now, (), "alice")
    dec = lambda t: a.decode(t, now)
    rissue = lambda: r.issue("sid-abcdefghijklmnop", 12)
    rparse = r.parse
else:
    from mmoshard.auth.issue import AccessTokenIssuer, refreshMAC, issueRefreshToken, parseRefreshToken
    a = AccessTokenIssuer(KEY); mac = tokens.HMACSHA256(tokens.signingKey(KEY)); rm = refreshMAC(KEY)
    issue = lambda: a.issue(7, "sid-abcdefghijklmnop", 900.0, now, (), "alice")
    dec = lambda t: tokens._decode(mac, t, now)
    rissue = lambda: issueRefreshToken(rm, "sid-abcdefghijklmnop", 12)
    rparse = lambda t: parseRefreshToken(rm, t)
t = issue(); rt = rissue()
assert dec(t).sid == "sid-abcdefghijklmnop" and rparse(rt) == ("sid-abcdefghijklmnop", 12)
def best(f, n=20000):
    return min(timeit.repeat(f, number=n, repeat=7)) / n * 1e6
# A fresh now per token defeats the issuer's cached spelling of iat/exp, as distinct logins do.
times = iter(range(10**9))
out = {
 "access issue": best(lambda: a.issue(7, "sid-abcdefghijklmnop", 900.0, now + next(times), (), "alice")),
 "access verify (decode)": best(lambda: dec(t)),
 "refresh issue": best(rissue),
 "refresh parse": best(lambda: rparse(rt)),
}
print(json.dumps(out))
'''
if len(sys.argv) != 3:
    sys.exit(__doc__)
res = {}
for label, root in (("old", sys.argv[1]), ("new", sys.argv[2])):
    res[label] = json.loads(subprocess.check_output([sys.executable, "-c", CODE, root]))
for k in res["old"]:
    print(f"{k:24} old {res['old'][k]:6.2f} us   new {res['new'][k]:6.2f} us")
