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
} Bot;

typedef struct {
    long connected, entered, failed, disconnects, corrections, errors, transfers;
    uint64_t bytesIn, msgsIn, sent;
    uint32_t *lat;
    size_t latLen, latCap;
    int measuring;
} Stats;

static struct {
    char host[256];
    int port;
    long count, firstId, sample;
    double size, radius, rate, warmup, duration, rampTimeout;
    uint64_t seed;
    const char *handshakes;
    int selftest;
} opt = {"127.0.0.1", 7000, 100, 1, 100, -1.0, 50.0, 250.0, 10.0, 30.0, 120.0, 1, NULL, 0};

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
            p = start;
            if (mpSkip(&p, end, 0) < 0) return -1;
            if (keyIs(&k, "redirect")) m->hasRedirect = 1;
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
            }
        } else if (keyIs(&k, "id")) {
            if (x.type == MP_INT) { m->hasId = 1; m->id = x.i; }
        } else if (keyIs(&k, "retry_after")) {
            m->hasRetry = asNumber(&x, &m->retryAfter);
        } else if (keyIs(&k, "redirect")) {
            m->hasRedirect = 1;
        }
    }
    if (p != end || !m->t) return -1; /* trailing bytes, or no str type */
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

/* One frame's payload. */
static int frameReceived(Bot *b, const uint8_t *p, size_t len) {
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

/* --- the run ------------------------------------------------------------ */

static struct {
    double started, nextSend, nextReport, nextConnectAt, rampDeadline, windowAt, endAt, limitAt;
    long nextConnect;
    int slot;
    const char *phase;
    double t0, cpu0, user0, sys0;
    long disc0, corr0;
    uint64_t sent0;
    int done;
} run;

static void sendTick(double now) {
    int s = run.slot;
    run.slot = (run.slot + 1) % SLOTS;
    uint32_t ct = nowMillis();
    /* A bot lost while sending is swapped out of the slot: walk backwards. */
    for (size_t j = slotLen[s]; j > 0; j--) {
        if (j - 1 < slotLen[s]) step(slots[s][j - 1], now, ct);
    }
    st.sent += slotLen[s];
}

static void beginWindow(double now) {
    run.phase = "measure";
    fprintf(stderr, "[w1] window start\n");
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
    st.measuring = 1;
    run.endAt = run.t0 + opt.duration;
}

static void report(double now) {
    fprintf(stderr, "[w1] %s t=%.0fs connected=%ld entered=%ld/%ld failed=%ld disconnects=%ld errors=%ld\n",
            run.phase, now - run.started, st.connected, st.entered, opt.count, st.failed,
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
    printf("workload=W1 n=%ld entered=%ld window_s=%s latency_p50_ms=%lld latency_p99_ms=%lld "
           "latency_samples=%zu bytes_per_client_s=%s msgs_per_client_s=%s moves_sent_s=%s "
           "disconnects=%ld window_disconnects=%ld corrections=%ld errors=%ld failed=%ld gen_cpu=%s\n",
           opt.count, st.entered, pyRound(a, window, 1), q50, q99, st.latLen,
           pyRound(b, (double)st.bytesIn / n / window, 1), pyRound(c, (double)st.msgsIn / n / window, 2),
           pyRound(d, (double)(st.sent - run.sent0) / window, 1), st.disconnects,
           st.disconnects - run.disc0, st.corrections - run.corr0, st.errors, st.failed,
           pyRound(e, (cpuSeconds() - run.cpu0) / window, 3));
    fflush(stdout);
    double user, sys;
    cpuSplit(&user, &sys);
    fprintf(stderr, "[w1] gen_cpu user=%.3f sys=%.3f\n", (user - run.user0) / window,
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
            fprintf(stderr, "[w1] ramp not complete after %ss; measuring anyway\n",
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
        fprintf(stderr, "[w1] time limit reached\n");
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
    return 0;
}

static void usage(void) {
    fprintf(stderr,
            "usage: w1gen --handshakes FILE [--address tcp:HOST:PORT] [--count N] [--first-id ID]\n"
            "             [--size L] [--radius R] [--rate R] [--warmup S] [--duration S]\n"
            "             [--ramp-timeout S] [--sample N] [--seed N] [--selftest]\n");
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
    }
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
