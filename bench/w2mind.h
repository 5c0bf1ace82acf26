/*
 * w2mind: a W2 fighter's mind in C, the port of mmoshard/bots/combat.py
 * (Ability, Kit, Seen, Fighter) for bench/w1gen.c's `--workload W2`.
 * Free of sockets and msgpack: the generator decodes world.u and feeds the
 * enter records, leaves, move records and combat records in; decide() says
 * what the bot does at its position now.  Constants, rules and their order
 * are combat.py's: change both together (mmoshard/bots/test/test_w2gen.py
 * compares the two on the same script of messages).
 */
#ifndef W2MIND_H
#define W2MIND_H

#include <stddef.h>
#include <stdint.h>

#define NPC_BASE 0x80000000u /* NPC entity ids start here (docs/combat.md) */
#define CAST_EVERY 1.5       /* seconds between two casts of one bot */
#define HEAL_BELOW 0.9       /* a healer heals the most hurt ally below this share */
#define MARGIN 2.5           /* metres a bot stays inside an ability's range */
#define COOLDOWN_SLACK 0.25  /* a tick and a round trip */
#define REPLY_TIMEOUT 5.0    /* a cast unanswered (or without effect) that long is given up */
#define KIT_MAX 24           /* abilities of one class's bar */
#define ID_MAX 48            /* bytes of an ability id */

/* The combat record kinds (mmoshard/world/combat/records.py). */
enum {
    R_CAST_START = 1, R_CAST_FINISH, R_CAST_INTERRUPT, R_DAMAGE, R_HEAL, R_HEALTH, R_AURA_ON,
    R_AURA_OFF, R_DEATH, R_REVIVE, R_RESOURCE, R_EVADE
};
#define RECORD_SIZE 16 /* "<BBHIIi" */

enum { KIND_DAMAGE, KIND_DEBUFF, KIND_TAUNT, KIND_HEAL, KIND_BUFF, KIND_SHIELD, KIND_OTHER };
enum { TGT_ENEMY, TGT_ALLY, TGT_SELF, TGT_AREA, TGT_OTHER };

/* What a bot needs to know of one ability of its kit. */
typedef struct {
    char id[ID_MAX];
    uint8_t idLen;
    int num, kind, target;
    double range, radius, cast, cooldown, gcd, cost, duration;
} Ability;

/* A class's rotation: its abilities in bar order, and which are heals,
 * self buffs and attacks (indexes into ab). */
typedef struct {
    char cls[64];
    int n, nHeals, nBuffs, nAttacks;
    Ability ab[KIT_MAX];
    uint8_t heals[KIT_MAX], buffs[KIT_MAX], attacks[KIT_MAX];
    double reach; /* metres from the target a fighter walks to */
} Kit;

/* An entity in view. */
typedef struct {
    uint32_t id;
    uint8_t used, npc, dead, evading, hasHp;
    double x, z, hp, hpMax;
} Seen;

enum { ACT_IDLE, ACT_WALK, ACT_STAND, ACT_CAST };

typedef struct {
    int what;
    double tx, tz;    /* WALK: towards */
    int slot;         /* CAST: the ability's index in the kit */
    int hasTarget;    /* CAST at an entity */
    uint32_t target;
    int hasXZ;        /* CAST at a point */
    double x, z;
} Action;

enum {
    REFUSED_ON_COOLDOWN, REFUSED_OUT_OF_RANGE, REFUSED_INVALID_TARGET, REFUSED_NO_RESOURCE,
    REFUSED_BUSY, REFUSED_DEAD, REFUSED_OTHER
};

typedef struct {
    uint32_t cid;
    const Kit *kit;
    int healer;
    Seen *tab; /* open addressing by id, linear probing */
    uint32_t cap, count;
    int hasTarget;
    uint32_t target;
    double reach;
    double readyAt[KIT_MAX]; /* 0: ready */
    double nextCast, busyUntil;
    int waiting, waitSlot, waitHasTarget;
    int64_t waitId;
    double waitAt;
    uint32_t waitTarget;
    int pendingSet[KIT_MAX]; /* a request went out, its effect not seen yet */
    double pendingAt[KIT_MAX];
    int nPending;
    int hasHp, hasRes, dead;
    double hp, hpMax, res;
    long expired, kills, events;
    double effects[KIT_MAX]; /* latencies of effects seen, for the caller to take */
    int nEffects;
} Fighter;

/* Kit.build and Kit.reach of combat.py over abilities in bar order. */
void kitBuild(Kit *k, const char *cls, size_t clsLen, const Ability *abilities, int n);
int kindOf(const uint8_t *s, size_t len);
int targetOf(const uint8_t *s, size_t len);

void fighterInit(Fighter *f, uint32_t cid, const Kit *kit, int healer);
void fighterFree(Fighter *f);
/* One enter record [id, kind, ..., x, y, z, ..., hp?, hp_max?, dead?, evading?]. */
void fighterEnter(Fighter *f, uint32_t id, int npc, double x, double z, int hasHp, double hp,
                  double hpMax, int dead, int hasEvading, int evading);
void fighterLeave(Fighter *f, uint32_t id);
void fighterMoves(Fighter *f, const uint8_t *blob, size_t len);
void fighterCombat(Fighter *f, const uint8_t *blob, size_t len, double now);
void fighterDecide(Fighter *f, double x, double z, int moving, double now, Action *out);
void fighterSent(Fighter *f, int64_t requestId, int slot, double now, int hasTarget, uint32_t target);
/* @return: 1 when it answers the request in flight. */
int fighterAccepted(Fighter *f, int64_t requestId, double castMs, double now);
int fighterRefused(Fighter *f, int64_t requestId, int code, int hasRetry, double retryAfter, double now);
void fighterRevived(Fighter *f);
Seen *fighterLookup(Fighter *f, uint32_t id);

#endif
