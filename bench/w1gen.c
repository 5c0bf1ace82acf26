/*
 * w1gen: the W1 load generator in C, doing what mmoshard/bots/w1.py does on
 * a fraction of the CPU, so that one generator core can drive more bots than
 * the server core can serve (the bare ceiling).
 *
 *   gcc -O2 -Wall -Wextra -o w1gen bench/w1gen.c -lm
 *   w1gen --handshakes FILE --address tcp:127.0.0.1:7000 --count N [options]
 *
 * Single-threaded, one epoll loop, nonblocking sockets.  The access tokens
 * (HS256 JWTs) are minted by bench/w1.py, which writes each bot's framed
 * hello and world.enter into FILE:
 *
 *   "W1HS0001" | u32 BE count | u32 BE first_id | count x (frame(hello) frame(enter))
 *
 * Bot i is account and character first_id + i.  Moves are the exact bytes of
 * packMove in mmoshard/bots/w1.py; the summary line on stdout and the
 * progress lines on stderr have the Python generator's format.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "w2mind.h"

#define SPEED 5.0
#define SEND_HZ 5
#define SLOTS 10 /* sender runs at SLOTS * SEND_HZ per second, one slot of bots each */
#define MAX_FRAME (1u << 22)
#define MOVE_RECORD 20 /* struct "<IffhhI": id, x, z, vx, vz, ct */
#define MOVE_FRAME 79  /* 4-byte length + 75 bytes of msgpack */
#define CONNECT_TIMEOUT 30.0
#define READ_SIZE 65536
#define MAX_EVENTS 1024

enum { IDLE, CONNECTING, OPEN, CLOSED };

typedef struct Bot {
    int fd, index, state, entered, sampled, attempts, slotPos, events;
    uint32_t cid, k;
    double x, z, vx, vz, turnAt, lastSend, connectAt, retryAt;
    const uint8_t *hello, *enter;
    uint32_t helloLen, enterLen;
    uint8_t *in, *out;
    size_t inLen, inCap, outOff, outLen, outCap;
    /* W2 (mmoshard/bots/w2.py's W2Bot): every other bot fights. */
    int fights, moving, dead;
    double releaseAt; /* 0: none */
    int64_t nextId;
    uint8_t cidBytes[4];
    Fighter *fighter;
} Bot;

typedef struct {
    long connected, entered, failed, disconnects, corrections, errors, transfers;
    uint64_t bytesIn, msgsIn, sent;
    uint32_t *lat;
    size_t latLen, latCap;
    int measuring;
    /* W2 */
    uint64_t steps;
    long fighters, decoders, casts, accepted, events, deaths, releases;
    double *effects;
    size_t effLen, effCap;
} Stats;

static struct {
    char host[256];
    int port;
    long count, firstId, sample;
    double size, radius, rate, warmup, duration, rampTimeout;
    uint64_t seed;
    const char *handshakes;
    int selftest;
    int w2;               /* --workload W2: mmoshard/bots/w2.py's bots */
    const char *gameData; /* --game-data FILE (W2): abilities and class roles */
} opt = {"127.0.0.1", 7000, 100, 1, 100, -1.0, 50.0, 250.0, 10.0, 30.0, 120.0, 1, NULL, 0, 0, NULL};

static Stats st;
static Bot *bots;
static Bot **slots[SLOTS];
static size_t slotLen[SLOTS];
static int ep = -1;
static int stopping;
static long sampleEvery = 1;
static struct sockaddr_storage addr;
static socklen_t addrLen;
static uint8_t readBuf[READ_SIZE];
static long *retries; /* bots with a pending world.enter retry */
static size_t retryLen;

/* --- clocks, rng -------------------------------------------------------- */

static double monotonic(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static uint32_t nowMillis(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (uint32_t)((uint64_t)t.tv_sec * 1000u + (uint64_t)(t.tv_nsec / 1000000));
}

static void cpuSplit(double *user, double *sys) {
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    *user = (double)r.ru_utime.tv_sec + r.ru_utime.tv_usec * 1e-6;
    *sys = (double)r.ru_stime.tv_sec + r.ru_stime.tv_usec * 1e-6;
}

static double cpuSeconds(void) {
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return (double)r.ru_utime.tv_sec + r.ru_utime.tv_usec * 1e-6 + (double)r.ru_stime.tv_sec +
           r.ru_stime.tv_usec * 1e-6;
}

static uint64_t rngState;

static uint64_t splitmix64(void) {
    uint64_t z = (rngState += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double uniform(double a, double b) {
    return a + (b - a) * ((double)(splitmix64() >> 11) * 0x1.0p-53);
}

/* --- msgpack reading ---------------------------------------------------- */

enum { MP_NIL, MP_BOOL, MP_INT, MP_FLOAT, MP_STR, MP_BIN, MP_ARRAY, MP_MAP };

typedef struct {
    int type;
    int64_t i; /* INT, BOOL; for uint64 above INT64_MAX, wraps (never used) */
    double f;
    const uint8_t *p; /* STR, BIN */
    uint32_t n;       /* STR, BIN length; ARRAY, MAP count */
} Val;

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint64_t be64(const uint8_t *p) { return (uint64_t)be32(p) << 32 | be32(p + 4); }
static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* Read the head of one value at *pp (< end): scalars whole, str/bin with
 * their bytes, arrays and maps their count only.  @return: 0, or -1 when
 * malformed, truncated or an ext type (the codec refuses those). */
static int mpNext(const uint8_t **pp, const uint8_t *end, Val *v) {
    const uint8_t *p = *pp;
    if (p >= end) return -1;
    uint8_t c = *p++;
    size_t need = 0, len = 0;
#define NEED(k) do { if ((size_t)(end - p) < (size_t)(k)) return -1; } while (0)
    if (c <= 0x7f) { v->type = MP_INT; v->i = c; }
    else if (c >= 0xe0) { v->type = MP_INT; v->i = (int8_t)c; }
    else if ((c & 0xe0) == 0xa0) { v->type = MP_STR; len = c & 0x1f; need = 1; }
    else if ((c & 0xf0) == 0x90) { v->type = MP_ARRAY; v->n = c & 0x0f; }
    else if ((c & 0xf0) == 0x80) { v->type = MP_MAP; v->n = c & 0x0f; }
    else switch (c) {
    case 0xc0: v->type = MP_NIL; break;
    case 0xc2: case 0xc3: v->type = MP_BOOL; v->i = c == 0xc3; break;
    case 0xc4: NEED(1); v->type = MP_BIN; len = p[0]; p += 1; need = 1; break;
    case 0xc5: NEED(2); v->type = MP_BIN; len = be16(p); p += 2; need = 1; break;
    case 0xc6: NEED(4); v->type = MP_BIN; len = be32(p); p += 4; need = 1; break;
    case 0xca: { NEED(4); uint32_t u = be32(p); float f; memcpy(&f, &u, 4); v->type = MP_FLOAT; v->f = f; p += 4; break; }
    case 0xcb: { NEED(8); uint64_t u = be64(p); double d; memcpy(&d, &u, 8); v->type = MP_FLOAT; v->f = d; p += 8; break; }
    case 0xcc: NEED(1); v->type = MP_INT; v->i = p[0]; p += 1; break;
    case 0xcd: NEED(2); v->type = MP_INT; v->i = be16(p); p += 2; break;
    case 0xce: NEED(4); v->type = MP_INT; v->i = be32(p); p += 4; break;
    case 0xcf: NEED(8); v->type = MP_INT; v->i = (int64_t)be64(p); p += 8; break;
    case 0xd0: NEED(1); v->type = MP_INT; v->i = (int8_t)p[0]; p += 1; break;
    case 0xd1: NEED(2); v->type = MP_INT; v->i = (int16_t)be16(p); p += 2; break;
    case 0xd2: NEED(4); v->type = MP_INT; v->i = (int32_t)be32(p); p += 4; break;
    case 0xd3: NEED(8); v->type = MP_INT; v->i = (int64_t)be64(p); p += 8; break;
    case 0xd9: NEED(1); v->type = MP_STR; len = p[0]; p += 1; need = 1; break;
    case 0xda: NEED(2); v->type = MP_STR; len = be16(p); p += 2; need = 1; break;
    case 0xdb: NEED(4); v->type = MP_STR; len = be32(p); p += 4; need = 1; break;
    case 0xdc: NEED(2); v->type = MP_ARRAY; v->n = be16(p); p += 2; break;
    case 0xdd: NEED(4); v->type = MP_ARRAY; v->n = be32(p); p += 4; break;
    case 0xde: NEED(2); v->type = MP_MAP; v->n = be16(p); p += 2; break;
    case 0xdf: NEED(4); v->type = MP_MAP; v->n = be32(p); p += 4; break;
    default: return -1; /* ext types, 0xc1 */
    }
    if (need) {
        NEED(len);
        v->p = p;
        v->n = (uint32_t)len;
        p += len;
    }
#undef NEED
    *pp = p;
    return 0;
}

/* Skip one whole value. */
static int mpSkip(const uint8_t **pp, const uint8_t *end, int depth) {
    Val v;
    if (depth > 64 || mpNext(pp, end, &v) < 0) return -1;
    if (v.type == MP_ARRAY || v.type == MP_MAP) {
        uint64_t items = v.type == MP_MAP ? 2ull * v.n : v.n;
        if (items > (uint64_t)(end - *pp)) return -1; /* every item takes a byte */
        for (uint64_t j = 0; j < items; j++)
            if (mpSkip(pp, end, depth + 1) < 0) return -1;
    }
    return 0;
}

/* The fields of a server message the bot looks at. */
typedef struct {
    const uint8_t *t;
    uint32_t tLen;
    int hasId, hasX, hasZ, hasK, hasRetry, hasRedirect, hasM;
    int64_t id, k;
    double x, z, retryAfter;
    const uint8_t *n, *m; /* n: the raw msgpack of ping's "n"; m: world.u's bin */
    size_t nLen, mLen;
    /* W2: world.u's e and l (their first item, count) and c; world.enter's
     * class and combat (the raw map); world.cast's cast_ms; error's code. */
    const uint8_t *e, *l, *c, *cls, *combat, *code;
    uint32_t eN, lN, clsLen, codeLen;
    size_t cLen, combatLen;
    int hasCastMs;
    double castMs;
    const uint8_t *end; /* of the payload */
} Msg;

static int keyIs(const Val *k, const char *s) {
    size_t l = strlen(s);
    return k->n == l && memcmp(k->p, s, l) == 0;
}

static int asNumber(const Val *v, double *out) {
    if (v->type == MP_FLOAT) { *out = v->f; return 1; }
    if (v->type == MP_INT) { *out = (double)v->i; return 1; }
    return 0;
}

/* Decode a message (a map with str keys and a str "t").  @return: 0 or -1. */
static int parseMsg(const uint8_t *p, size_t len, Msg *m) {
    const uint8_t *end = p + len;
    Val v, k;
    memset(m, 0, sizeof *m);
    if (mpNext(&p, end, &v) < 0 || v.type != MP_MAP) return -1;
    for (uint32_t j = 0; j < v.n; j++) {
        if (mpNext(&p, end, &k) < 0 || k.type != MP_STR) return -1;
        const uint8_t *start = p;
        Val x;
        if (mpNext(&p, end, &x) < 0) return -1;
        if (x.type == MP_ARRAY || x.type == MP_MAP) { /* e, l, ...: skip */
            const uint8_t *body = p;
            p = start;
            if (mpSkip(&p, end, 0) < 0) return -1;
            if (keyIs(&k, "redirect")) m->hasRedirect = 1;
            else if (x.type == MP_ARRAY && keyIs(&k, "e")) { m->e = body; m->eN = x.n; }
            else if (x.type == MP_ARRAY && keyIs(&k, "l")) { m->l = body; m->lN = x.n; }
            else if (x.type == MP_MAP && keyIs(&k, "combat")) {
                m->combat = start;
                m->combatLen = (size_t)(p - start);
            }
            continue;
        }
        if (k.n == 1) {
            switch (k.p[0]) {
            case 't': if (x.type == MP_STR) { m->t = x.p; m->tLen = x.n; } break;
            case 'x': m->hasX = asNumber(&x, &m->x); break;
            case 'z': m->hasZ = asNumber(&x, &m->z); break;
            case 'k': if (x.type == MP_INT) { m->hasK = 1; m->k = x.i; } break;
            case 'n': m->n = start; m->nLen = (size_t)(p - start); break;
            case 'm': if (x.type == MP_BIN) { m->hasM = 1; m->m = x.p; m->mLen = x.n; } break;
            case 'c': if (x.type == MP_BIN) { m->c = x.p; m->cLen = x.n; } break;
            }
        } else if (keyIs(&k, "id")) {
            if (x.type == MP_INT) { m->hasId = 1; m->id = x.i; }
        } else if (keyIs(&k, "retry_after")) {
            m->hasRetry = asNumber(&x, &m->retryAfter);
        } else if (keyIs(&k, "redirect")) {
            m->hasRedirect = 1;
        } else if (keyIs(&k, "class")) {
            if (x.type == MP_STR) { m->cls = x.p; m->clsLen = x.n; }
        } else if (keyIs(&k, "code")) {
            if (x.type == MP_STR) { m->code = x.p; m->codeLen = x.n; }
        } else if (keyIs(&k, "cast_ms")) {
            m->hasCastMs = asNumber(&x, &m->castMs);
        }
    }
    if (p != end || !m->t) return -1; /* trailing bytes, or no str type */
    m->end = end;
    return 0;
}

static int typeIs(const Msg *m, const char *s) {
    size_t l = strlen(s);
    return m->tLen == l && memcmp(m->t, s, l) == 0;
}

/* --- sockets ------------------------------------------------------------ */

static void setEvents(Bot *b, int events) {
    if (b->events == events) return;
    struct epoll_event e = {.events = (uint32_t)events, .data.u32 = (uint32_t)b->index};
    epoll_ctl(ep, b->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, b->fd, &e);
    b->events = events;
}

static void slotAdd(Bot *b) {
    int s = b->index % SLOTS;
    b->slotPos = (int)slotLen[s];
    slots[s][slotLen[s]++] = b;
}

static void slotRemove(Bot *b) {
    if (b->slotPos < 0) return;
    int s = b->index % SLOTS;
    Bot *last = slots[s][--slotLen[s]];
    slots[s][b->slotPos] = last;
    last->slotPos = b->slotPos;
    b->slotPos = -1;
}

/* The connection is gone (server closed it, an error, or a protocol error). */
static void lose(Bot *b) {
    if (b->fd < 0) return;
    close(b->fd);
    b->fd = -1;
    b->state = CLOSED;
    b->events = 0;
    b->outLen = b->outOff = 0;
    if (!stopping) st.disconnects++;
    slotRemove(b);
}

static void reserve(uint8_t **buf, size_t *cap, size_t need) {
    if (need <= *cap) return;
    size_t c = *cap ? *cap : 256;
    while (c < need) c *= 2;
    *buf = realloc(*buf, c);
    if (!*buf) { perror("realloc"); exit(2); }
    *cap = c;
}

/* Write now if nothing is queued; queue what the socket does not take. */
static void sendBytes(Bot *b, const uint8_t *data, size_t len) {
    if (b->fd < 0 || b->state != OPEN) return;
    if (b->outLen == 0) {
        ssize_t w = send(b->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) { lose(b); return; }
            w = 0;
        }
        if ((size_t)w == len) return;
        data += w;
        len -= (size_t)w;
        b->outOff = 0;
    }
    reserve(&b->out, &b->outCap, b->outOff + b->outLen + len);
    memcpy(b->out + b->outOff + b->outLen, data, len);
    b->outLen += len;
    setEvents(b, EPOLLIN | EPOLLOUT);
}

static void flushOut(Bot *b) {
    while (b->outLen) {
        ssize_t w = send(b->fd, b->out + b->outOff, b->outLen, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            lose(b);
            return;
        }
        b->outOff += (size_t)w;
        b->outLen -= (size_t)w;
    }
    b->outOff = 0;
    setEvents(b, EPOLLIN);
}

/* --- the bot ------------------------------------------------------------ */

static void newHeading(Bot *b, double now) {
    double h = uniform(0.0, 2.0 * M_PI);
    b->vx = SPEED * cos(h);
    b->vz = SPEED * sin(h);
    b->turnAt = now + uniform(2.0, 5.0);
}

static void enter(Bot *b) {
    b->attempts++;
    sendBytes(b, b->enter, b->enterLen);
}

static void connectBot(Bot *b, double now) {
    int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) { st.failed++; b->state = CLOSED; return; }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    b->fd = fd;
    b->state = CONNECTING;
    b->connectAt = now;
    b->events = 0;
    if (connect(fd, (struct sockaddr *)&addr, addrLen) < 0 && errno != EINPROGRESS) {
        close(fd);
        b->fd = -1;
        b->state = CLOSED;
        st.failed++;
        return;
    }
    setEvents(b, EPOLLOUT);
}

/* The Python bot's connectionMade (after buildProtocol's Bot.__init__). */
static void connectionMade(Bot *b, double now) {
    b->state = OPEN;
    st.connected++;
    b->x = uniform(0.0, opt.size);
    b->z = uniform(0.0, opt.size);
    newHeading(b, now);
    b->k = 0;
    b->sampled = b->index % sampleEvery == 0;
    setEvents(b, EPOLLIN);
    sendBytes(b, b->hello, b->helloLen);
}

static void addLatency(uint32_t v) {
    if (st.latLen == st.latCap) {
        st.latCap = st.latCap ? st.latCap * 2 : 65536;
        st.lat = realloc(st.lat, st.latCap * sizeof *st.lat);
        if (!st.lat) { perror("realloc"); exit(2); }
    }
    st.lat[st.latLen++] = v;
}

static void scheduleRetry(Bot *b, double at) {
    if (b->retryAt == 0.0) {
        retries[retryLen++] = b->index;
    }
    b->retryAt = at;
}

/* @return: 0, or -1 for a message the Python bot would fail on. */
static int handle(Bot *b, const Msg *m) {
    if (typeIs(m, "world.u")) {
        if (m->hasM && m->mLen && st.measuring) {
            if (m->mLen % MOVE_RECORD) return -1; /* struct.iter_unpack raises */
            uint32_t now = nowMillis();
            for (size_t o = 0; o < m->mLen; o += MOVE_RECORD)
                addLatency(now - le32(m->m + o + 16));
        }
    } else if (typeIs(m, "ping")) {
        uint8_t buf[64];
        static const uint8_t head[] = {0x82, 0xa1, 't', 0xa4, 'p', 'o', 'n', 'g', 0xa1, 'n'};
        size_t nl = m->n ? m->nLen : 1;
        if (nl > 32) return -1;
        uint32_t len = (uint32_t)(sizeof head + nl);
        buf[0] = 0; buf[1] = 0; buf[2] = (uint8_t)(len >> 8); buf[3] = (uint8_t)len;
        memcpy(buf + 4, head, sizeof head);
        if (m->n) memcpy(buf + 4 + sizeof head, m->n, nl);
        else buf[4 + sizeof head] = 0xc0;
        sendBytes(b, buf, 4 + len);
    } else if (typeIs(m, "world.correct")) {
        st.corrections++;
        if (!m->hasX || !m->hasZ || !m->hasK) return -1;
        b->x = m->x; b->z = m->z; b->k = (uint32_t)m->k;
    } else if (typeIs(m, "welcome")) {
        enter(b);
    } else if (typeIs(m, "world.enter")) {
        if (m->hasRedirect) { st.errors++; return 0; }
        if (!m->hasX || !m->hasZ || !m->hasK) return -1;
        b->x = m->x; b->z = m->z; b->k = (uint32_t)m->k;
        b->lastSend = monotonic();
        st.entered++;
        if (!b->entered) slotAdd(b);
        b->entered = 1;
    } else if (typeIs(m, "error")) {
        st.errors++;
        if (m->hasId && m->id == 2 && b->attempts < 10) {
            double after = m->hasRetry && m->retryAfter != 0.0 ? m->retryAfter : 1.0;
            scheduleRetry(b, monotonic() + after);
        } else if (m->hasId && m->id == 1) {
            st.failed++;
        }
    } else if (typeIs(m, "world.transfer")) {
        st.transfers++;
    }
    return 0;
}

static const uint8_t WORLD_U_HEAD[] = {0x82, 0xa1, 't', 0xa7, 'w', 'o', 'r', 'l', 'd', '.', 'u'};

static int w2Frame(Bot *b, const uint8_t *p, size_t len);

/* One frame's payload. */
static int frameReceived(Bot *b, const uint8_t *p, size_t len) {
    if (opt.w2) return w2Frame(b, p, len);
    /* Non-sampled bots skip world.u (the Python bot: WORLD_U in payload). */
    if (b->entered && !b->sampled && len >= sizeof WORLD_U_HEAD &&
        memcmp(p, WORLD_U_HEAD, sizeof WORLD_U_HEAD) == 0)
        return 0;
    Msg m;
    if (parseMsg(p, len, &m) < 0) return -1;
    if (b->entered && !b->sampled && typeIs(&m, "world.u")) return 0;
    return handle(b, &m);
}

/* Split data into frames; keep a partial frame in b->in. */
static void dataReceived(Bot *b, const uint8_t *data, size_t len) {
    if (st.measuring) st.bytesIn += len;
    if (b->inLen) {
        reserve(&b->in, &b->inCap, b->inLen + len);
        memcpy(b->in + b->inLen, data, len);
        len += b->inLen;
        data = b->in;
    }
    size_t off = 0;
    while (len - off >= 4) {
        uint32_t size = be32(data + off);
        if (size == 0 || size > MAX_FRAME) { lose(b); b->inLen = 0; return; }
        if (len - off - 4 < size) break;
        if (st.measuring) st.msgsIn++;
        if (frameReceived(b, data + off + 4, size) < 0) lose(b);
        off += 4 + size;
        if (b->fd < 0) { b->inLen = 0; return; }
    }
    size_t rest = len - off;
    if (rest == 0) { b->inLen = 0; return; }
    if (data == b->in) {
        memmove(b->in, b->in + off, rest);
    } else {
        reserve(&b->in, &b->inCap, rest);
        memcpy(b->in, data + off, rest);
    }
    b->inLen = rest;
}

static void onEvent(Bot *b, uint32_t ev, double now) {
    if (b->fd < 0) return;
    if (b->state == CONNECTING) {
        int err = 0;
        socklen_t l = sizeof err;
        if (getsockopt(b->fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0) err = errno;
        if (err == 0 && !(ev & (EPOLLERR | EPOLLHUP))) {
            connectionMade(b, now);
        } else if (err != EINPROGRESS) {
            close(b->fd);
            b->fd = -1;
            b->state = CLOSED;
            st.failed++;
        }
        return;
    }
    if (ev & EPOLLOUT) {
        flushOut(b);
        if (b->fd < 0) return;
    }
    if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        ssize_t r = recv(b->fd, readBuf, sizeof readBuf, MSG_DONTWAIT);
        if (r > 0) {
            dataReceived(b, readBuf, (size_t)r);
        } else if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            lose(b);
        }
    }
}

/* --- moves -------------------------------------------------------------- */

static uint8_t moveTemplate[MOVE_FRAME];
/* Offsets of the values in the frame. */
enum { MX = 21, MZ = 32, MVX = 44, MVZ = 56, MCT = 68, MK = 75 };

static void buildMoveTemplate(void) {
    static const uint8_t t[MOVE_FRAME] = {
        0, 0, 0, 75, 0x87, 0xa1, 't', 0xaa, 'w', 'o', 'r', 'l', 'd', '.', 'm', 'o', 'v', 'e',
        0xa1, 'x', 0xcb, 0, 0, 0, 0, 0, 0, 0, 0,
        0xa1, 'z', 0xcb, 0, 0, 0, 0, 0, 0, 0, 0,
        0xa2, 'v', 'x', 0xcb, 0, 0, 0, 0, 0, 0, 0, 0,
        0xa2, 'v', 'z', 0xcb, 0, 0, 0, 0, 0, 0, 0, 0,
        0xa2, 'c', 't', 0xce, 0, 0, 0, 0,
        0xa1, 'k', 0xce, 0, 0, 0, 0};
    memcpy(moveTemplate, t, sizeof t);
}

static void putBE64(uint8_t *p, double d) {
    uint64_t u;
    memcpy(&u, &d, 8);
    for (int i = 7; i >= 0; i--) { p[i] = (uint8_t)u; u >>= 8; }
}

static void putBE32(uint8_t *p, uint32_t u) {
    p[0] = (uint8_t)(u >> 24); p[1] = (uint8_t)(u >> 16); p[2] = (uint8_t)(u >> 8); p[3] = (uint8_t)u;
}

/* packMove(x, z, vx, vz, ct, k) of mmoshard/bots/w1.py. */
static void packMove(uint8_t *f, double x, double z, double vx, double vz, uint32_t ct, uint32_t k) {
    memcpy(f, moveTemplate, MOVE_FRAME);
    putBE64(f + MX, x);
    putBE64(f + MZ, z);
    putBE64(f + MVX, vx);
    putBE64(f + MVZ, vz);
    putBE32(f + MCT, ct);
    putBE32(f + MK, k);
}

static void step(Bot *b, double now, uint32_t ct) {
    double dt = now - b->lastSend;
    b->lastSend = now;
    if (now >= b->turnAt) newHeading(b, now);
    double size = opt.size;
    double x = b->x + b->vx * dt, z = b->z + b->vz * dt;
    if (x < 0.0) { x = -x; b->vx = -b->vx; }
    else if (x > size) { x = 2 * size - x; b->vx = -b->vx; }
    if (z < 0.0) { z = -z; b->vz = -b->vz; }
    else if (z > size) { z = 2 * size - z; b->vz = -b->vz; }
    b->x = x;
    b->z = z;
    uint8_t f[MOVE_FRAME];
    packMove(f, x, z, b->vx, b->vz, ct, b->k);
    sendBytes(b, f, MOVE_FRAME);
}

/* --- W2: fighting bots (mmoshard/bots/w2.py's W2Bot and W2Run) --------------- */

#define RELEASE_AFTER 3.0 /* seconds a dead bot lies before world.release */
#define RELEASE_ID 3
#define FIRST_CAST_ID 10
#define MAX_KITS 64
#define MAX_CODES 32

/* The game data (bench/w1gen.py writeGameData): ability specs, class roles. */
static Ability *specs;
static size_t nSpecs;
static struct { char cls[64]; int healer; } roles[MAX_KITS];
static int nRoles;
/* W2Run.kits: class -> its kit, or none (nothing to cast), from the first
 * world.enter reply naming the class. */
static struct { char cls[64]; size_t clsLen; int hasKit; Kit kit; } kits[MAX_KITS];
static int nKits;
/* Refusals by error code, for the summary's refused_<code>_s. */
static struct { char code[64]; long count; } refusedTab[MAX_CODES];
static int nRefused;

static void loadGameData(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) { perror(path); exit(2); }
    char line[512];
    size_t cap = 0;
    if (!fgets(line, sizeof line, f) || strncmp(line, "W2DATA1", 7) != 0) {
        fprintf(stderr, "w1gen: %s is not a W2 game data file\n", path);
        exit(2);
    }
    while (fgets(line, sizeof line, f)) {
        char id[64], kind[32], target[32], role[32];
        Ability a;
        memset(&a, 0, sizeof a);
        if (sscanf(line, "ability %63s %d %31s %31s %lf %lf %lf %lf %lf %lf %lf", id, &a.num, kind,
                   target, &a.range, &a.radius, &a.cast, &a.cooldown, &a.gcd, &a.cost,
                   &a.duration) == 11) {
            size_t l = strlen(id);
            if (l >= ID_MAX) { fprintf(stderr, "w1gen: ability id %s too long\n", id); exit(2); }
            memcpy(a.id, id, l);
            a.idLen = (uint8_t)l;
            a.kind = kindOf((const uint8_t *)kind, strlen(kind));
            a.target = targetOf((const uint8_t *)target, strlen(target));
            if (nSpecs == cap) {
                cap = cap ? cap * 2 : 64;
                specs = realloc(specs, cap * sizeof *specs);
                if (!specs) { perror("realloc"); exit(2); }
            }
            specs[nSpecs++] = a;
        } else if (sscanf(line, "class %63s %31s", id, role) == 2 && nRoles < MAX_KITS) {
            snprintf(roles[nRoles].cls, sizeof roles[nRoles].cls, "%s", id);
            roles[nRoles++].healer = strcmp(role, "healer") == 0;
        } else if (line[0] != '\n') {
            fprintf(stderr, "w1gen: %s: bad line %s", path, line);
            exit(2);
        }
    }
    fclose(f);
}

static const Ability *specFor(const uint8_t *id, size_t len) {
    for (size_t i = 0; i < nSpecs; i++)
        if (specs[i].idLen == len && memcmp(specs[i].id, id, len) == 0) return &specs[i];
    return NULL;
}

static int classHeals(const uint8_t *cls, size_t len) {
    for (int i = 0; i < nRoles; i++)
        if (strlen(roles[i].cls) == len && memcmp(roles[i].cls, cls, len) == 0) return roles[i].healer;
    return 0;
}

/* Ability.fromReply: one entry of combat.abilities, completed from its spec.
 * @return: 1 with *a filled, 0 when neither a spec nor a num says what it is. */
static int abilityFromReply(const uint8_t **pp, const uint8_t *end, Ability *a) {
    Val v, k, x;
    const uint8_t *head = *pp;
    if (mpNext(pp, end, &v) < 0) return -1;
    if (v.type != MP_MAP) {
        *pp = head;
        return mpSkip(pp, end, 0) < 0 ? -1 : 0;
    }
    const uint8_t *start = *pp;
    const uint8_t *id = NULL;
    uint32_t idLen = 0;
    int hasNum = 0;
    /* First pass: the id, for the spec. */
    for (uint32_t j = 0; j < v.n; j++) {
        if (mpNext(pp, end, &k) < 0 || k.type != MP_STR) return -1;
        const uint8_t *vs = *pp;
        if (mpNext(pp, end, &x) < 0) return -1;
        if (x.type == MP_ARRAY || x.type == MP_MAP) { *pp = vs; if (mpSkip(pp, end, 0) < 0) return -1; }
        if (keyIs(&k, "id") && x.type == MP_STR) { id = x.p; idLen = x.n; }
        if (keyIs(&k, "num")) hasNum = 1;
    }
    const uint8_t *after = *pp;
    const Ability *spec = id ? specFor(id, idLen) : NULL;
    if (!spec && !hasNum) return 0;
    if (!id || idLen >= ID_MAX) return 0;
    if (spec) {
        *a = *spec;
    } else {
        memset(a, 0, sizeof *a);
        memcpy(a->id, id, idLen);
        a->idLen = (uint8_t)idLen;
        a->kind = KIND_DAMAGE;
        a->target = TGT_ENEMY;
        a->gcd = 1.5;
    }
    /* Second pass: what the reply names wins; the _ms forms after the others. */
    double ms[4] = {0, 0, 0, 0};
    int hasMs[4] = {0, 0, 0, 0};
    *pp = start;
    for (uint32_t j = 0; j < v.n; j++) {
        mpNext(pp, end, &k);
        const uint8_t *vs = *pp;
        mpNext(pp, end, &x);
        if (x.type == MP_ARRAY || x.type == MP_MAP) { *pp = vs; mpSkip(pp, end, 0); continue; }
        double d = 0.0;
        int num = asNumber(&x, &d);
        if (keyIs(&k, "num") && x.type == MP_INT) a->num = (int)x.i;
        else if (keyIs(&k, "kind") && x.type == MP_STR) a->kind = kindOf(x.p, x.n);
        else if (keyIs(&k, "target") && x.type == MP_STR) a->target = targetOf(x.p, x.n);
        else if (!num) continue;
        else if (keyIs(&k, "range")) a->range = d;
        else if (keyIs(&k, "radius")) a->radius = d;
        else if (keyIs(&k, "cast")) a->cast = d;
        else if (keyIs(&k, "cooldown")) a->cooldown = d;
        else if (keyIs(&k, "gcd")) a->gcd = d;
        else if (keyIs(&k, "cost")) a->cost = d;
        else if (keyIs(&k, "duration")) a->duration = d;
        else if (keyIs(&k, "cast_ms")) { ms[0] = d; hasMs[0] = 1; }
        else if (keyIs(&k, "cooldown_ms")) { ms[1] = d; hasMs[1] = 1; }
        else if (keyIs(&k, "gcd_ms")) { ms[2] = d; hasMs[2] = 1; }
        else if (keyIs(&k, "duration_ms")) { ms[3] = d; hasMs[3] = 1; }
    }
    *pp = after;
    if (hasMs[0]) a->cast = ms[0] / 1000.0;
    if (hasMs[1]) a->cooldown = ms[1] / 1000.0;
    if (hasMs[2]) a->gcd = ms[2] / 1000.0;
    if (hasMs[3]) a->duration = ms[3] / 1000.0;
    return 1;
}

/* W2Run.kitFor: the kit of class cls from the reply's combat map (cached by class). */
static const Kit *kitFor(const uint8_t *cls, size_t clsLen, const uint8_t *combat, size_t combatLen) {
    for (int i = 0; i < nKits; i++)
        if (kits[i].clsLen == clsLen && memcmp(kits[i].cls, cls, clsLen) == 0)
            return kits[i].hasKit ? &kits[i].kit : NULL;
    if (nKits == MAX_KITS || clsLen >= sizeof kits[0].cls) return NULL;
    Ability found[KIT_MAX];
    int n = 0;
    const uint8_t *p = combat, *end = combat + combatLen;
    Val v, k, x;
    if (combat && mpNext(&p, end, &v) == 0 && v.type == MP_MAP) {
        for (uint32_t j = 0; j < v.n; j++) {
            if (mpNext(&p, end, &k) < 0 || k.type != MP_STR) break;
            const uint8_t *vs = p;
            if (mpNext(&p, end, &x) < 0) break;
            if (keyIs(&k, "abilities") && x.type == MP_ARRAY) {
                for (uint32_t i = 0; i < x.n; i++) {
                    Ability a;
                    int r = abilityFromReply(&p, end, &a);
                    if (r < 0) break;
                    if (r && n < KIT_MAX) found[n++] = a;
                }
                break;
            }
            if (x.type == MP_ARRAY || x.type == MP_MAP) { p = vs; if (mpSkip(&p, end, 0) < 0) break; }
        }
    }
    int i = nKits++;
    memcpy(kits[i].cls, cls, clsLen);
    kits[i].clsLen = clsLen;
    kits[i].hasKit = n > 0;
    if (n) kitBuild(&kits[i].kit, (const char *)cls, clsLen, found, n);
    if (!n || !kits[i].kit.nAttacks) {
        fprintf(stderr, "[w2] class '%.*s': no attack known; its bots only walk\n", (int)clsLen, cls);
        fflush(stderr);
    }
    return kits[i].hasKit ? &kits[i].kit : NULL;
}

static void w2Died(Bot *b, double now) {
    b->dead = 1;
    b->moving = 0;
    b->releaseAt = now + RELEASE_AFTER;
    if (b->fighter) b->fighter->dead = 1;
    if (st.measuring) st.deaths++;
}

static void w2Revived(Bot *b, double now) {
    b->dead = 0;
    b->releaseAt = 0.0;
    if (b->fighter) fighterRevived(b->fighter);
    b->lastSend = now;
    newHeading(b, now);
    b->moving = 1;
}

/* W2Bot.arm: a fighter with the kit of the class the world.enter reply names. */
static void w2Arm(Bot *b, const Msg *m, double now) {
    static const uint8_t none[] = "";
    const uint8_t *cls = m->cls ? m->cls : none;
    const Kit *kit = kitFor(cls, m->cls ? m->clsLen : 0, m->combat, m->combatLen);
    if (!kit || !kit->nAttacks) return;
    Fighter *f = malloc(sizeof *f);
    if (!f) { perror("malloc"); exit(2); }
    fighterInit(f, b->cid, kit, classHeals(cls, m->cls ? m->clsLen : 0));
    int dead = 0;
    const uint8_t *p = m->combat, *end = m->combat + m->combatLen;
    Val v, k, x;
    if (mpNext(&p, end, &v) == 0 && v.type == MP_MAP) {
        for (uint32_t j = 0; j < v.n; j++) {
            if (mpNext(&p, end, &k) < 0 || k.type != MP_STR) break;
            const uint8_t *vs = p;
            if (mpNext(&p, end, &x) < 0) break;
            if (x.type == MP_ARRAY || x.type == MP_MAP) { p = vs; if (mpSkip(&p, end, 0) < 0) break; continue; }
            double d = 0.0;
            int num = asNumber(&x, &d);
            if (keyIs(&k, "hp")) { f->hasHp = num; f->hp = d; }
            else if (keyIs(&k, "hp_max") && num) f->hpMax = d;
            else if (keyIs(&k, "resource")) { f->hasRes = num; f->res = d; }
            else if (keyIs(&k, "dead")) dead = (x.type == MP_BOOL || x.type == MP_INT) && x.i;
        }
    }
    b->fighter = f;
    if (dead) w2Died(b, now);
    st.fighters++;
    if (!b->sampled) st.decoders++;
}

/* W2Bot.fate: its own death or revival in combat records c. */
static void w2Fate(Bot *b, const uint8_t *c, size_t len) {
    for (size_t o = 0; o + RECORD_SIZE <= len; o += RECORD_SIZE) {
        if (le32(c + o + 8) != b->cid) continue;
        if (c[o] == R_DEATH && !b->dead) w2Died(b, monotonic());
        else if (c[o] == R_REVIVE && b->dead) w2Revived(b, monotonic());
    }
}

static int truthy(const Val *v) {
    return (v->type == MP_BOOL || v->type == MP_INT) ? v->i != 0 : v->type == MP_FLOAT ? v->f != 0 : 0;
}

/* Fighter.update's enters and leaves: the e and l of a world.u. @return: 0 or -1. */
static int w2View(Fighter *f, const Msg *m) {
    const uint8_t *p = m->e, *end = m->end;
    for (uint32_t i = 0; p && i < m->eN; i++) {
        Val a, v;
        if (mpNext(&p, end, &a) < 0 || a.type != MP_ARRAY) return -1;
        uint32_t id = 0;
        int npc = 0, dead = 0, evading = 0;
        double x = 0, z = 0, hp = 0, hpMax = 0;
        for (uint32_t j = 0; j < a.n; j++) {
            const uint8_t *vs = p;
            if (mpNext(&p, end, &v) < 0) return -1;
            if (v.type == MP_ARRAY || v.type == MP_MAP) {
                p = vs;
                if (mpSkip(&p, end, 0) < 0) return -1;
                continue;
            }
            switch (j) {
            case 0: id = (uint32_t)v.i; break;
            case 1: npc = v.type == MP_STR && v.n == 1 && v.p[0] == 'n'; break;
            case 5: asNumber(&v, &x); break;
            case 7: asNumber(&v, &z); break;
            case 10: asNumber(&v, &hp); break;
            case 11: asNumber(&v, &hpMax); break;
            case 12: dead = truthy(&v); break;
            case 13: evading = truthy(&v); break;
            }
        }
        if (a.n < 8) return -1; /* the Python bot: rec[7] raises */
        fighterEnter(f, id, npc, x, z, a.n >= 13, hp, hpMax, dead, a.n >= 14, evading);
    }
    p = m->l;
    for (uint32_t i = 0; p && i < m->lN; i++) {
        Val v;
        if (mpNext(&p, end, &v) < 0) return -1;
        if (v.type == MP_INT) fighterLeave(f, (uint32_t)v.i);
        else if (v.type == MP_ARRAY || v.type == MP_MAP) return -1;
    }
    return 0;
}

/* W2Bot.update: a decoded world.u (a fighter's view, its casts' effects; movement latency). */
static int w2Update(Bot *b, const Msg *m) {
    double now = monotonic();
    Fighter *f = b->fighter;
    if (m->hasM && m->mLen % MOVE_RECORD) return -1; /* struct.iter_unpack raises */
    if (m->c && m->cLen % RECORD_SIZE) return -1;
    if (f) {
        if (w2View(f, m) < 0) return -1;
        if (m->hasM && m->mLen) fighterMoves(f, m->m, m->mLen);
        if (m->c && m->cLen) fighterCombat(f, m->c, m->cLen, now);
        if (f->nEffects) {
            if (st.measuring) {
                for (int i = 0; i < f->nEffects; i++) {
                    if (st.effLen == st.effCap) {
                        st.effCap = st.effCap ? st.effCap * 2 : 4096;
                        st.effects = realloc(st.effects, st.effCap * sizeof *st.effects);
                        if (!st.effects) { perror("realloc"); exit(2); }
                    }
                    st.effects[st.effLen++] = f->effects[i];
                }
            }
            f->nEffects = 0;
        }
        if (f->dead != b->dead) {
            if (f->dead) w2Died(b, now);
            else w2Revived(b, now);
        }
    } else if (m->c && m->cLen) {
        w2Fate(b, m->c, m->cLen);
    }
    if (st.measuring) {
        if (m->c) st.events += (long)(m->cLen / RECORD_SIZE);
        if (m->hasM && m->mLen && b->sampled) {
            uint32_t ms = nowMillis();
            for (size_t o = 0; o < m->mLen; o += MOVE_RECORD)
                if (le32(m->m + o) < NPC_BASE) addLatency(ms - le32(m->m + o + 16));
        }
    }
    return 0;
}

static int refusalOf(const Msg *m) {
    static const struct { const char *code; int kind; } codes[] = {
        {"combat.on_cooldown", REFUSED_ON_COOLDOWN}, {"combat.out_of_range", REFUSED_OUT_OF_RANGE},
        {"combat.invalid_target", REFUSED_INVALID_TARGET}, {"combat.no_resource", REFUSED_NO_RESOURCE},
        {"combat.busy", REFUSED_BUSY}, {"combat.dead", REFUSED_DEAD}};
    for (size_t i = 0; m->code && i < sizeof codes / sizeof codes[0]; i++)
        if (strlen(codes[i].code) == m->codeLen && memcmp(codes[i].code, m->code, m->codeLen) == 0)
            return codes[i].kind;
    return REFUSED_OTHER;
}

static void countRefused(const Msg *m) {
    char code[64];
    if (m->code) snprintf(code, sizeof code, "%.*s", (int)m->codeLen, m->code);
    else strcpy(code, "None");
    for (int i = 0; i < nRefused; i++)
        if (strcmp(refusedTab[i].code, code) == 0) { refusedTab[i].count++; return; }
    if (nRefused < MAX_CODES) {
        strcpy(refusedTab[nRefused].code, code);
        refusedTab[nRefused++].count = 1;
    }
}

/* W2Bot.handle: cast replies and refusals, world.release; the rest as W1. */
static int w2Handle(Bot *b, const Msg *m) {
    double now = monotonic();
    int isError = typeIs(m, "error");
    if (typeIs(m, "world.cast")) {
        if (b->fighter && fighterAccepted(b->fighter, m->hasId ? m->id : -1,
                                          m->hasCastMs ? m->castMs : 0.0, now))
            st.accepted++;
        return 0;
    }
    if (isError && m->hasId && m->id >= FIRST_CAST_ID) {
        if (b->fighter && fighterRefused(b->fighter, m->id, refusalOf(m), m->hasRetry, m->retryAfter, now))
            countRefused(m);
        return 0;
    }
    int release = typeIs(m, "world.release");
    if (release || (isError && m->hasId && m->id == RELEASE_ID)) {
        if (release) {
            if (!m->hasX || !m->hasZ || !m->hasK) return -1;
            b->x = m->x; b->z = m->z; b->k = (uint32_t)m->k;
        }
        if (b->dead) w2Revived(b, now);
        return 0;
    }
    if (handle(b, m) < 0) return -1;
    if (typeIs(m, "world.enter") && b->entered) {
        b->lastSend = now;
        if (b->fights && !b->fighter) w2Arm(b, m, now);
    }
    return 0;
}

static const uint8_t WORLD_U_KEY[] = {0xa7, 'w', 'o', 'r', 'l', 'd', '.', 'u'};
static const uint8_t C_KEY[] = {0xa1, 'c'};

/* W2Bot.dataReceived's per-frame part: fighters and the sample decode every
 * world.u; walkers only one whose bytes hold a c key and their own id. */
static int w2Frame(Bot *b, const uint8_t *p, size_t len) {
    Msg m;
    if (b->entered && memmem(p, len, WORLD_U_KEY, sizeof WORLD_U_KEY)) {
        if (b->fighter || b->sampled) {
            if (parseMsg(p, len, &m) < 0) return -1;
            return w2Update(b, &m);
        }
        if (memmem(p, len, C_KEY, sizeof C_KEY) && memmem(p, len, b->cidBytes, 4)) {
            if (parseMsg(p, len, &m) < 0) return -1;
            if (m.c && m.cLen % RECORD_SIZE) return -1;
            if (m.c) w2Fate(b, m.c, m.cLen);
        }
        return 0;
    }
    if (parseMsg(p, len, &m) < 0) return -1;
    return w2Handle(b, &m);
}

/* msgpack writing, as msgpack.packb does: the smallest form. */
static uint8_t *putStr(uint8_t *p, const char *s, size_t len) {
    if (len < 32) *p++ = (uint8_t)(0xa0 | len);
    else { *p++ = 0xd9; *p++ = (uint8_t)len; }
    memcpy(p, s, len);
    return p + len;
}

static uint8_t *putUint(uint8_t *p, uint64_t u) {
    if (u < 128) { *p++ = (uint8_t)u; }
    else if (u < 256) { *p++ = 0xcc; *p++ = (uint8_t)u; }
    else if (u < 65536) { *p++ = 0xcd; *p++ = (uint8_t)(u >> 8); *p++ = (uint8_t)u; }
    else { *p++ = 0xce; putBE32(p, (uint32_t)u); p += 4; }
    return p;
}

#define KEY(p, s) putStr(p, s, sizeof s - 1)

/* The framed world.cast W2Bot.step sends for a decision. @return: its length. */
static size_t packCast(uint8_t *frame, int64_t id, const Ability *a, const Action *act) {
    uint8_t *p = frame + 4;
    *p++ = (uint8_t)(0x80 | (3 + act->hasTarget + 2 * act->hasXZ));
    p = KEY(p, "t");
    p = KEY(p, "world.cast");
    p = KEY(p, "id");
    p = putUint(p, (uint64_t)id);
    p = KEY(p, "ability");
    p = putStr(p, a->id, a->idLen);
    if (act->hasTarget) {
        p = KEY(p, "target");
        p = putUint(p, act->target);
    }
    if (act->hasXZ) {
        p = KEY(p, "x");
        *p++ = 0xcb;
        putBE64(p, act->x);
        p += 8;
        p = KEY(p, "z");
        *p++ = 0xcb;
        putBE64(p, act->z);
        p += 8;
    }
    size_t len = (size_t)(p - frame);
    putBE32(frame, (uint32_t)(len - 4));
    return len;
}

/* {"t": "world.release", "id": 3}, framed. */
static const uint8_t RELEASE_FRAME[] = {0, 0, 0, 21, 0x82, 0xa1, 't', 0xad, 'w', 'o', 'r', 'l', 'd', '.',
                                        'r', 'e', 'l', 'e', 'a', 's', 'e', 0xa2, 'i', 'd', RELEASE_ID};

/* W2Bot.step: one 5 Hz turn. @return: 1 when it sent a move. */
static int w2Step(Bot *b, double now, uint32_t ct) {
    if (b->dead) {
        b->lastSend = now;
        if (b->releaseAt > 0.0 && now >= b->releaseAt) {
            b->releaseAt = now + 10.0; /* again, if no revival comes */
            sendBytes(b, RELEASE_FRAME, sizeof RELEASE_FRAME);
            if (st.measuring) st.releases++;
        }
        return 0;
    }
    Fighter *f = b->fighter;
    if (!f) {
        step(b, now, ct);
        return 1;
    }
    Action a;
    fighterDecide(f, b->x, b->z, b->moving, now, &a);
    if (a.what == ACT_IDLE) {
        if (!b->moving || isinf(b->turnAt)) {
            newHeading(b, now);
            b->moving = 1;
        }
        step(b, now, ct);
        return 1;
    }
    if (a.what == ACT_WALK) {
        double dx = a.tx - b->x, dz = a.tz - b->z;
        double d = hypot(dx, dz);
        if (d == 0.0) d = 1.0;
        b->vx = SPEED * dx / d;
        b->vz = SPEED * dz / d;
        b->turnAt = INFINITY; /* no random turns on the way */
        b->moving = 1;
        step(b, now, ct);
        return 1;
    }
    b->lastSend = now;
    if (a.what == ACT_STAND) {
        if (!b->moving) return 0;
        b->moving = 0;
        b->vx = b->vz = 0.0;
        uint8_t fr[MOVE_FRAME];
        packMove(fr, b->x, b->z, 0.0, 0.0, ct, b->k);
        sendBytes(b, fr, MOVE_FRAME);
        return 1;
    }
    uint8_t fr[128];
    size_t len = packCast(fr, b->nextId, &f->kit->ab[a.slot], &a);
    sendBytes(b, fr, len);
    fighterSent(f, b->nextId, a.slot, now, a.hasTarget, a.target);
    b->nextId = b->nextId < 0x7FFFFFFF ? b->nextId + 1 : FIRST_CAST_ID;
    st.casts++;
    return 0;
}

/* --- the run ------------------------------------------------------------ */

static struct {
    double started, nextSend, nextReport, nextConnectAt, rampDeadline, windowAt, endAt, limitAt;
    long nextConnect;
    int slot;
    const char *phase;
    double t0, cpu0, user0, sys0;
    long disc0, corr0;
    uint64_t sent0, steps0;
    int done;
} run;

#define TAG (opt.w2 ? "w2" : "w1")

static void sendTick(double now) {
    int s = run.slot;
    run.slot = (run.slot + 1) % SLOTS;
    uint32_t ct = nowMillis();
    size_t n = slotLen[s];
    if (opt.w2) {
        uint64_t moved = 0;
        for (size_t j = slotLen[s]; j > 0; j--)
            if (j - 1 < slotLen[s]) moved += (uint64_t)w2Step(slots[s][j - 1], now, ct);
        st.sent += moved;
        st.steps += n;
        return;
    }
    /* A bot lost while sending is swapped out of the slot: walk backwards. */
    for (size_t j = slotLen[s]; j > 0; j--) {
        if (j - 1 < slotLen[s]) step(slots[s][j - 1], now, ct);
    }
    st.sent += n;
}

static void beginWindow(double now) {
    run.phase = "measure";
    fprintf(stderr, "[%s] window start\n", TAG);
    fflush(stderr);
    st.bytesIn = st.msgsIn = 0;
    st.latLen = 0;
    run.t0 = monotonic();
    (void)now;
    run.cpu0 = cpuSeconds();
    cpuSplit(&run.user0, &run.sys0);
    run.disc0 = st.disconnects;
    run.corr0 = st.corrections;
    run.sent0 = st.sent;
    /* W2Stats.resetCombat */
    run.steps0 = st.steps;
    st.casts = st.accepted = st.events = st.deaths = st.releases = 0;
    st.effLen = 0;
    nRefused = 0;
    for (long i = 0; i < opt.count; i++)
        if (bots[i].fighter) bots[i].fighter->expired = bots[i].fighter->kills = 0;
    st.measuring = 1;
    run.endAt = run.t0 + opt.duration;
}

static void report(double now) {
    fprintf(stderr, "[%s] %s t=%.0fs connected=%ld entered=%ld/%ld failed=%ld disconnects=%ld errors=%ld\n",
            TAG, run.phase, now - run.started, st.connected, st.entered, opt.count, st.failed,
            st.disconnects, st.errors);
    fflush(stderr);
    if (strcmp(run.phase, "ramp") == 0 && st.entered >= opt.count) {
        run.phase = "warmup";
        run.windowAt = now + opt.warmup;
    }
}

/* Python's str(round(v, digits)) for ordinary magnitudes. */
static const char *pyRound(char *buf, double v, int digits) {
    snprintf(buf, 64, "%.*f", digits, v); /* callers pass char[64] */
    size_t l = strlen(buf);
    while (l > 0 && buf[l - 1] == '0' && buf[l - 2] != '.') buf[--l] = 0;
    if (strcmp(buf, "-0.0") == 0) strcpy(buf, "0.0");
    return buf;
}

static int cmpU32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void stopAll(void) {
    stopping = 1;
    for (long i = 0; i < opt.count; i++)
        if (bots[i].fd >= 0) {
            close(bots[i].fd);
            bots[i].fd = -1;
        }
    run.done = 1;
}

static int cmpDouble(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int cmpCode(const void *a, const void *b) {
    return strcmp((const char *)a, (const char *)b); /* code is the first field */
}

/* W2Run.summary's fields after W1's (and kills: NPC deaths a fighter dealt). */
static void w2Summary(double window) {
    long decoders = st.decoders, expired = 0, kills = 0, refused = 0;
    for (long i = 0; i < opt.count; i++) {
        Bot *b = &bots[i];
        if (b->sampled && b->entered) decoders++;
        if (b->fighter) { expired += b->fighter->expired; kills += b->fighter->kills; }
    }
    if (decoders < 1) decoders = 1;
    for (int i = 0; i < nRefused; i++) refused += refusedTab[i].count;
    char a[64], b[64], c[64], d[64];
    printf(" fighters=%ld steps_s=%s casts_s=%s casts_ok_s=%s casts_refused_s=%s", st.fighters,
           pyRound(a, (double)(st.steps - run.steps0) / window, 1), pyRound(b, (double)st.casts / window, 2),
           pyRound(c, (double)st.accepted / window, 2), pyRound(d, (double)refused / window, 2));
    qsort(refusedTab, (size_t)nRefused, sizeof refusedTab[0], cmpCode);
    for (int i = 0; i < nRefused; i++) {
        const char *dot = strrchr(refusedTab[i].code, '.');
        printf(" refused_%s_s=%s", dot ? dot + 1 : refusedTab[i].code,
               pyRound(a, (double)refusedTab[i].count / window, 2));
    }
    qsort(st.effects, st.effLen, sizeof *st.effects, cmpDouble);
    if (st.effLen) {
        size_t i50 = (size_t)(0.50 * (double)st.effLen), i99 = (size_t)(0.99 * (double)st.effLen);
        if (i50 > st.effLen - 1) i50 = st.effLen - 1;
        if (i99 > st.effLen - 1) i99 = st.effLen - 1;
        printf(" cast_effect_p50_ms=%s cast_effect_p99_ms=%s", pyRound(a, st.effects[i50] * 1000.0, 1),
               pyRound(b, st.effects[i99] * 1000.0, 1));
    } else {
        printf(" cast_effect_p50_ms=-1 cast_effect_p99_ms=-1");
    }
    printf(" cast_effect_samples=%zu cast_no_effect=%ld combat_events_per_client_s=%s "
           "combat_bytes_per_client_s=%s deaths=%ld releases=%ld kills=%ld",
           st.effLen, expired, pyRound(a, (double)st.events / (double)decoders / window, 2),
           pyRound(b, (double)st.events * RECORD_SIZE / (double)decoders / window, 1), st.deaths,
           st.releases, kills);
}

static void endWindow(void) {
    st.measuring = 0;
    double window = monotonic() - run.t0;
    double n = (double)(st.entered > 1 ? st.entered : 1);
    if (st.latLen) qsort(st.lat, st.latLen, sizeof *st.lat, cmpU32);
    long long q50 = -1, q99 = -1;
    if (st.latLen) {
        size_t i50 = (size_t)(0.50 * (double)st.latLen), i99 = (size_t)(0.99 * (double)st.latLen);
        q50 = st.lat[i50 < st.latLen - 1 ? i50 : st.latLen - 1];
        q99 = st.lat[i99 < st.latLen - 1 ? i99 : st.latLen - 1];
    }
    char a[64], b[64], c[64], d[64], e[64];
    printf("workload=%s n=%ld entered=%ld window_s=%s latency_p50_ms=%lld latency_p99_ms=%lld "
           "latency_samples=%zu bytes_per_client_s=%s msgs_per_client_s=%s moves_sent_s=%s "
           "disconnects=%ld window_disconnects=%ld corrections=%ld errors=%ld failed=%ld gen_cpu=%s",
           opt.w2 ? "W2" : "W1", opt.count, st.entered, pyRound(a, window, 1), q50, q99, st.latLen,
           pyRound(b, (double)st.bytesIn / n / window, 1), pyRound(c, (double)st.msgsIn / n / window, 2),
           pyRound(d, (double)(st.sent - run.sent0) / window, 1), st.disconnects,
           st.disconnects - run.disc0, st.corrections - run.corr0, st.errors, st.failed,
           pyRound(e, (cpuSeconds() - run.cpu0) / window, 3));
    if (opt.w2) w2Summary(window);
    printf("\n");
    fflush(stdout);
    double user, sys;
    cpuSplit(&user, &sys);
    fprintf(stderr, "[%s] gen_cpu user=%.3f sys=%.3f\n", TAG, (user - run.user0) / window,
            (sys - run.sys0) / window);
    stopAll();
}

static void runRetries(double now) {
    size_t j = 0;
    for (size_t i = 0; i < retryLen; i++) {
        Bot *b = &bots[retries[i]];
        if (b->retryAt <= now) {
            b->retryAt = 0.0;
            enter(b);
        } else {
            retries[j++] = retries[i];
        }
    }
    retryLen = j;
}

static double nextRetry(void) {
    double t = INFINITY;
    for (size_t i = 0; i < retryLen; i++)
        if (bots[retries[i]].retryAt < t) t = bots[retries[i]].retryAt;
    return t;
}

/* Run what is due; @return: the time of the next thing to do. */
static double timers(double now) {
    double interval = 1.0 / opt.rate;
    while (run.nextConnect < opt.count && run.nextConnectAt <= now) {
        connectBot(&bots[run.nextConnect], now);
        run.nextConnect++;
        run.nextConnectAt = run.started + (double)run.nextConnect * interval;
    }
    if (run.nextSend <= now) {
        /* LoopingCall: one call however late, then the next tick in the future. */
        double period = 1.0 / (SEND_HZ * SLOTS);
        sendTick(now);
        double late = now - run.nextSend;
        run.nextSend += period * (floor(late / period) + 1.0);
    }
    if (retryLen) runRetries(now);
    if (run.nextReport <= now) {
        report(now);
        for (long i = 0; i < run.nextConnect; i++) {
            Bot *b = &bots[i];
            if (b->state == CONNECTING && now - b->connectAt >= CONNECT_TIMEOUT) {
                close(b->fd);
                b->fd = -1;
                b->state = CLOSED;
                st.failed++;
            }
        }
        run.nextReport += 1.0;
        if (run.nextReport <= now) run.nextReport = now + 1.0;
    }
    if (run.rampDeadline <= now) {
        run.rampDeadline = INFINITY;
        if (strcmp(run.phase, "ramp") == 0) {
            char t[64];
            fprintf(stderr, "[%s] ramp not complete after %ss; measuring anyway\n", TAG,
                    pyRound(t, opt.rampTimeout, 6));
            run.phase = "warmup";
            beginWindow(now);
        }
    }
    if (run.windowAt <= now) {
        run.windowAt = INFINITY;
        beginWindow(now);
    }
    if (st.measuring && run.endAt <= now) {
        endWindow();
        return now;
    }
    if (run.limitAt <= now) {
        fprintf(stderr, "[%s] time limit reached\n", TAG);
        stopAll();
        return now;
    }
    double next = run.nextSend;
    if (run.nextConnect < opt.count && run.nextConnectAt < next) next = run.nextConnectAt;
    if (run.nextReport < next) next = run.nextReport;
    if (run.rampDeadline < next) next = run.rampDeadline;
    if (run.windowAt < next) next = run.windowAt;
    if (st.measuring && run.endAt < next) next = run.endAt;
    if (run.limitAt < next) next = run.limitAt;
    if (retryLen) { double r = nextRetry(); if (r < next) next = r; }
    return next;
}

/* --- setup -------------------------------------------------------------- */

static uint8_t *handshakeData;

static void loadHandshakes(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(2); }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    handshakeData = malloc((size_t)size + 1);
    if (!handshakeData || fread(handshakeData, 1, (size_t)size, f) != (size_t)size) {
        fprintf(stderr, "w1gen: cannot read %s\n", path);
        exit(2);
    }
    fclose(f);
    const uint8_t *p = handshakeData, *end = handshakeData + size;
    if (size < 16 || memcmp(p, "W1HS0001", 8) != 0) {
        fprintf(stderr, "w1gen: %s is not a handshake file\n", path);
        exit(2);
    }
    uint32_t count = be32(p + 8), first = be32(p + 12);
    if (count < (uint32_t)opt.count || first != (uint32_t)opt.firstId) {
        fprintf(stderr, "w1gen: %s holds %u bots from id %u, need %ld from %ld\n", path, count,
                first, opt.count, opt.firstId);
        exit(2);
    }
    p += 16;
    for (long i = 0; i < opt.count; i++) {
        for (int h = 0; h < 2; h++) {
            if (end - p < 4 || (uint32_t)(end - p - 4) < be32(p)) {
                fprintf(stderr, "w1gen: %s truncated at bot %ld\n", path, i);
                exit(2);
            }
            uint32_t len = 4 + be32(p);
            /* Check it is what the bot should send. */
            Msg m;
            if (parseMsg(p + 4, len - 4, &m) < 0 || !typeIs(&m, h ? "world.enter" : "hello") ||
                !m.hasId || m.id != h + 1) {
                fprintf(stderr, "w1gen: %s: bad %s message for bot %ld\n", path, h ? "enter" : "hello", i);
                exit(2);
            }
            if (h) { bots[i].enter = p; bots[i].enterLen = len; }
            else { bots[i].hello = p; bots[i].helloLen = len; }
            p += len;
        }
    }
}

static void resolve(const char *address) {
    const char *a = address;
    if (strncmp(a, "tcp:", 4) == 0) a += 4;
    const char *colon = strrchr(a, ':');
    if (!colon) { fprintf(stderr, "w1gen: bad address %s\n", address); exit(2); }
    size_t hl = (size_t)(colon - a);
    if (hl >= sizeof opt.host) hl = sizeof opt.host - 1;
    memcpy(opt.host, a, hl);
    opt.host[hl] = 0;
    opt.port = atoi(colon + 1);
}

static void lookup(void) {
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    char port[16];
    snprintf(port, sizeof port, "%d", opt.port);
    int r = getaddrinfo(opt.host, port, &hints, &res);
    if (r) { fprintf(stderr, "w1gen: %s: %s\n", opt.host, gai_strerror(r)); exit(2); }
    memcpy(&addr, res->ai_addr, res->ai_addrlen);
    addrLen = res->ai_addrlen;
    freeaddrinfo(res);
}

static void raiseFileLimit(void) {
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
        r.rlim_cur = r.rlim_max;
        setrlimit(RLIMIT_NOFILE, &r);
    }
    if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < (rlim_t)opt.count + 32)
        fprintf(stderr, "w1gen: warning: open file limit %lu < %ld bots\n",
                (unsigned long)r.rlim_cur, opt.count);
}

/* Print the move frame of fixed values, for bench/w1.py's self-test. */
static int selftest(void) {
    uint8_t f[MOVE_FRAME];
    packMove(f, 1.5, -2.25, 3.0, -4.0, 123456789u, 7u);
    printf("move ");
    for (int i = 0; i < MOVE_FRAME; i++) printf("%02x", f[i]);
    printf("\n");
    if (opt.handshakes) printf("handshakes %ld ok\n", opt.count);
    /* W2: a cast at an entity, one at a point, a release; the first spec's kit. */
    Ability fire = {.id = "fireball", .idLen = 8, .num = 31, .kind = KIND_DAMAGE, .target = TGT_ENEMY};
    Action at = {.what = ACT_CAST, .hasTarget = 1, .target = NPC_BASE + 5};
    Action ground = {.what = ACT_CAST, .hasXZ = 1, .x = 12.5, .z = -3.25};
    uint8_t fr[128];
    size_t len = packCast(fr, 10, &fire, &at);
    printf("cast ");
    for (size_t i = 0; i < len; i++) printf("%02x", fr[i]);
    len = packCast(fr, 70000, &fire, &ground);
    printf("\ncast ");
    for (size_t i = 0; i < len; i++) printf("%02x", fr[i]);
    printf("\nrelease ");
    for (size_t i = 0; i < sizeof RELEASE_FRAME; i++) printf("%02x", RELEASE_FRAME[i]);
    printf("\n");
    if (opt.gameData) {
        for (int i = 0; i < nRoles; i++) printf("class %s %s\n", roles[i].cls, roles[i].healer ? "healer" : "-");
        for (size_t i = 0; i < nSpecs; i++)
            printf("ability %s %d %d %d %g %g %g %g %g %g %g\n", specs[i].id, specs[i].num, specs[i].kind,
                   specs[i].target, specs[i].range, specs[i].radius, specs[i].cast, specs[i].cooldown,
                   specs[i].gcd, specs[i].cost, specs[i].duration);
    }
    return 0;
}

static void usage(void) {
    fprintf(stderr,
            "usage: w1gen --handshakes FILE [--address tcp:HOST:PORT] [--count N] [--first-id ID]\n"
            "             [--size L] [--radius R] [--rate R] [--warmup S] [--duration S]\n"
            "             [--ramp-timeout S] [--sample N] [--seed N] [--selftest]\n"
            "             [--workload W1|W2] [--game-data FILE (W2)]\n");
    exit(2);
}

int main(int argc, char **argv) {
    static struct option longs[] = {
        {"address", required_argument, 0, 'a'}, {"token-key", required_argument, 0, 'K'},
        {"count", required_argument, 0, 'n'},   {"first-id", required_argument, 0, 'f'},
        {"size", required_argument, 0, 'L'},    {"radius", required_argument, 0, 'R'},
        {"rate", required_argument, 0, 'r'},    {"warmup", required_argument, 0, 'w'},
        {"duration", required_argument, 0, 'd'}, {"ramp-timeout", required_argument, 0, 'T'},
        {"sample", required_argument, 0, 's'},  {"seed", required_argument, 0, 'S'},
        {"handshakes", required_argument, 0, 'H'}, {"selftest", no_argument, 0, 'X'},
        {"workload", required_argument, 0, 'W'}, {"game-data", required_argument, 0, 'G'},
        {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (c) {
        case 'a': resolve(optarg); break;
        case 'K': break; /* tokens come pre-minted in the handshake file */
        case 'n': opt.count = atol(optarg); break;
        case 'f': opt.firstId = atol(optarg); break;
        case 'L': opt.size = atof(optarg); break;
        case 'R': opt.radius = atof(optarg); break;
        case 'r': opt.rate = atof(optarg); break;
        case 'w': opt.warmup = atof(optarg); break;
        case 'd': opt.duration = atof(optarg); break;
        case 'T': opt.rampTimeout = atof(optarg); break;
        case 's': opt.sample = atol(optarg); break;
        case 'S': opt.seed = strtoull(optarg, NULL, 10); break;
        case 'H': opt.handshakes = optarg; break;
        case 'X': opt.selftest = 1; break;
        case 'W':
            if (strcmp(optarg, "W2") == 0) opt.w2 = 1;
            else if (strcmp(optarg, "W1") != 0) usage();
            break;
        case 'G': opt.gameData = optarg; break;
        default: usage();
        }
    }
    if (optind != argc || opt.count < 1 || opt.rate <= 0) usage();
    if (opt.size < 0) opt.size = sqrt((double)opt.count * M_PI * opt.radius * opt.radius / 25.0);
    buildMoveTemplate();
    bots = calloc((size_t)opt.count, sizeof *bots);
    retries = calloc((size_t)opt.count, sizeof *retries);
    for (int s = 0; s < SLOTS; s++) slots[s] = calloc((size_t)opt.count / SLOTS + 1, sizeof(Bot *));
    if (!bots || !retries) { perror("calloc"); return 2; }
    for (long i = 0; i < opt.count; i++) {
        bots[i].fd = -1;
        bots[i].index = (int)i;
        bots[i].cid = (uint32_t)(opt.firstId + i);
        bots[i].slotPos = -1;
        bots[i].fights = i % 2 == 0;
        bots[i].moving = 1;
        bots[i].nextId = FIRST_CAST_ID;
        for (int j = 0; j < 4; j++) bots[i].cidBytes[j] = (uint8_t)(bots[i].cid >> (8 * j));
    }
    if (opt.gameData) loadGameData(opt.gameData);
    if (opt.handshakes) loadHandshakes(opt.handshakes);
    if (opt.selftest) return selftest();
    if (!opt.handshakes) usage();

    signal(SIGPIPE, SIG_IGN);
    raiseFileLimit();
    lookup();
    rngState = opt.seed;
    long per = opt.sample > 1 ? opt.sample : 1;
    sampleEvery = opt.count / per > 1 ? opt.count / per : 1;
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) { perror("epoll_create1"); return 2; }

    double now = monotonic();
    run.started = now;
    run.phase = "ramp";
    run.nextConnect = 0;
    run.nextConnectAt = now;
    run.nextSend = now;
    run.nextReport = now + 1.0;
    run.rampDeadline = now + opt.rampTimeout;
    run.windowAt = INFINITY;
    run.endAt = INFINITY;
    run.limitAt = now + opt.rampTimeout + opt.warmup + opt.duration + 30.0;

    struct epoll_event evs[MAX_EVENTS];
    while (!run.done) {
        double next = timers(monotonic());
        if (run.done) break;
        double wait = next - monotonic();
        int ms = wait <= 0 ? 0 : (int)ceil(wait * 1000.0);
        int ne = epoll_wait(ep, evs, MAX_EVENTS, ms);
        if (ne < 0) {
            if (errno == EINTR) continue;
            perror("epoll_wait");
            return 2;
        }
        now = monotonic();
        for (int i = 0; i < ne; i++) onEvent(&bots[evs[i].data.u32], evs[i].events, now);
    }
    return 0;
}
