/*
 * w2mind: a W2 fighter's mind, the port of mmoshard/bots/combat.py's
 * Kit and Fighter (see w2mind.h).  Each function names the Python method
 * it follows; keep them in step.
 */
#include "w2mind.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int strIs(const uint8_t *s, size_t len, const char *c) {
    return strlen(c) == len && memcmp(s, c, len) == 0;
}

int kindOf(const uint8_t *s, size_t len) {
    static const char *names[] = {"damage", "debuff", "taunt", "heal", "buff", "shield"};
    for (int i = 0; i < KIND_OTHER; i++)
        if (strIs(s, len, names[i])) return i;
    return KIND_OTHER;
}

int targetOf(const uint8_t *s, size_t len) {
    static const char *names[] = {"enemy", "ally", "self", "area"};
    for (int i = 0; i < TGT_OTHER; i++)
        if (strIs(s, len, names[i])) return i;
    return TGT_OTHER;
}

/* reachOf: how far from its target an ability lands. */
static double reachOf(const Ability *a) {
    return a->range > 0 || a->target != TGT_AREA ? a->range : a->radius;
}

/* lock: seconds before a bot casts it again (its cooldown, or while its effect lasts). */
static double lockOf(const Ability *a) {
    return a->cooldown > a->duration ? a->cooldown : a->duration;
}

/* Kit.build, Kit.reach. */
void kitBuild(Kit *k, const char *cls, size_t clsLen, const Ability *abilities, int n) {
    memset(k, 0, sizeof *k);
    if (clsLen >= sizeof k->cls) clsLen = sizeof k->cls - 1;
    memcpy(k->cls, cls, clsLen);
    if (n > KIT_MAX) n = KIT_MAX;
    k->n = n;
    double shortest = INFINITY;
    for (int i = 0; i < n; i++) {
        const Ability *a = &k->ab[i];
        k->ab[i] = abilities[i];
        if (a->kind == KIND_HEAL && (a->target == TGT_ALLY || a->target == TGT_SELF))
            k->heals[k->nHeals++] = (uint8_t)i;
        else if ((a->kind == KIND_BUFF || a->kind == KIND_SHIELD) && a->target == TGT_SELF)
            k->buffs[k->nBuffs++] = (uint8_t)i;
        else if ((a->kind == KIND_DAMAGE || a->kind == KIND_DEBUFF || a->kind == KIND_TAUNT) &&
                 (a->target == TGT_ENEMY || a->target == TGT_AREA)) {
            k->attacks[k->nAttacks++] = (uint8_t)i;
            if (reachOf(a) < shortest) shortest = reachOf(a);
        }
    }
    k->reach = k->nAttacks ? fmax(1.0, shortest - MARGIN) : 1.0;
}

/* --- the entities in view: open addressing by id -------------------------- */

static uint32_t hashId(uint32_t id, uint32_t mask) { return (id * 2654435761u) & mask; }

void fighterInit(Fighter *f, uint32_t cid, const Kit *kit, int healer) {
    memset(f, 0, sizeof *f);
    f->cid = cid;
    f->kit = kit;
    f->healer = healer && kit->nHeals > 0;
    f->reach = kit->reach;
    f->cap = 64;
    f->tab = calloc(f->cap, sizeof *f->tab);
    if (!f->tab) { perror("calloc"); exit(2); }
}

void fighterFree(Fighter *f) {
    free(f->tab);
    f->tab = NULL;
}

Seen *fighterLookup(Fighter *f, uint32_t id) {
    uint32_t mask = f->cap - 1;
    for (uint32_t i = hashId(id, mask);; i = (i + 1) & mask) {
        Seen *s = &f->tab[i];
        if (!s->used) return NULL;
        if (s->id == id) return s;
    }
}

static void grow(Fighter *f) {
    Seen *old = f->tab;
    uint32_t oldCap = f->cap;
    f->cap *= 2;
    f->tab = calloc(f->cap, sizeof *f->tab);
    if (!f->tab) { perror("calloc"); exit(2); }
    uint32_t mask = f->cap - 1;
    for (uint32_t j = 0; j < oldCap; j++) {
        if (!old[j].used) continue;
        uint32_t i = hashId(old[j].id, mask);
        while (f->tab[i].used) i = (i + 1) & mask;
        f->tab[i] = old[j];
    }
    free(old);
}

static Seen *insert(Fighter *f, uint32_t id) {
    if (2 * (f->count + 1) > f->cap) grow(f);
    uint32_t mask = f->cap - 1;
    uint32_t i = hashId(id, mask);
    for (; f->tab[i].used; i = (i + 1) & mask)
        if (f->tab[i].id == id) return &f->tab[i];
    f->count++;
    f->tab[i].used = 1;
    f->tab[i].id = id;
    return &f->tab[i];
}

static void removeId(Fighter *f, uint32_t id) {
    Seen *s = fighterLookup(f, id);
    if (!s) return;
    uint32_t mask = f->cap - 1;
    uint32_t i = (uint32_t)(s - f->tab);
    f->tab[i].used = 0;
    f->count--;
    /* Backward shift: move up the entries that probed past the hole. */
    for (uint32_t j = (i + 1) & mask; f->tab[j].used; j = (j + 1) & mask) {
        uint32_t home = hashId(f->tab[j].id, mask);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            f->tab[i] = f->tab[j];
            f->tab[j].used = 0;
            i = j;
        }
    }
}

/* --- what it sees ------------------------------------------------------- */

/* Fighter.enter */
void fighterEnter(Fighter *f, uint32_t id, int npc, double x, double z, int hasHp, double hp,
                  double hpMax, int dead, int hasEvading, int evading) {
    if (id == f->cid) return;
    Seen *s = insert(f, id);
    s->npc = (uint8_t)(npc != 0);
    s->x = x;
    s->z = z;
    s->hasHp = (uint8_t)(hasHp != 0);
    s->hp = hasHp ? hp : 0.0;
    s->hpMax = hasHp ? hpMax : 0.0; /* unknown until a HEALTH record */
    s->dead = (uint8_t)(hasHp && dead);
    s->evading = (uint8_t)(hasEvading && evading);
}

/* the leaves of Fighter.update */
void fighterLeave(Fighter *f, uint32_t id) {
    removeId(f, id);
    if (f->hasTarget && f->target == id) f->hasTarget = 0;
}

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static float lef32(const uint8_t *p) {
    uint32_t u = le32(p);
    float v;
    memcpy(&v, &u, 4);
    return v;
}

/* Fighter.moves: NPC positions (and players', for a healer). */
void fighterMoves(Fighter *f, const uint8_t *blob, size_t len) {
    for (size_t o = 0; o + 20 <= len; o += 20) {
        uint32_t id = le32(blob + o);
        if (!f->healer && id < NPC_BASE) continue;
        Seen *s = fighterLookup(f, id);
        if (s && s->npc == (id >= NPC_BASE)) {
            s->x = lef32(blob + o + 4);
            s->z = lef32(blob + o + 8);
        }
    }
}

static int slotOfNum(const Fighter *f, int num) {
    for (int i = 0; i < f->kit->n; i++)
        if (f->kit->ab[i].num == num) return i;
    return -1;
}

/* Fighter.lookup: the NPCs by id range, the players below it. */
static Seen *lookupKind(Fighter *f, uint32_t id) {
    Seen *s = fighterLookup(f, id);
    return s && s->npc == (id >= NPC_BASE) ? s : NULL;
}

/* Fighter.combat */
void fighterCombat(Fighter *f, const uint8_t *blob, size_t len, double now) {
    uint32_t cid = f->cid;
    f->events += (long)(len / RECORD_SIZE);
    for (size_t o = 0; o + RECORD_SIZE <= len; o += RECORD_SIZE) {
        const uint8_t *r = blob + o;
        int kind = r[0];
        int ability = r[2] | r[3] << 8;
        uint32_t a = le32(r + 4), b = le32(r + 8);
        double value = (double)(int32_t)le32(r + 12);
        if (a == cid && f->nPending &&
            (kind == R_CAST_START || kind == R_CAST_FINISH || kind == R_DAMAGE || kind == R_HEAL ||
             kind == R_AURA_ON)) {
            int s = slotOfNum(f, ability);
            if (s >= 0 && f->pendingSet[s]) {
                f->pendingSet[s] = 0;
                f->nPending--;
                if (f->nEffects < KIT_MAX) f->effects[f->nEffects++] = now - f->pendingAt[s];
            }
        }
        if (kind == R_HEALTH) {
            Seen *s = lookupKind(f, a);
            if (s) {
                s->hasHp = 1;
                s->hp = value;
                s->hpMax = (double)b;
            } else if (a == cid) {
                f->hasHp = 1;
                f->hp = value;
                f->hpMax = (double)b;
            }
        } else if (kind == R_DEATH || kind == R_REVIVE) {
            int alive = kind == R_REVIVE;
            double hp = alive ? value : 0.0;
            if (!alive && a == cid && b >= NPC_BASE) f->kills++;
            Seen *s = lookupKind(f, b);
            if (s) {
                s->dead = (uint8_t)!alive;
                s->hp = hp;
                s->hasHp = 1;
                if (alive) s->evading = 0;
                if (!alive && f->hasTarget && b == f->target) f->hasTarget = 0;
            } else if (b == cid) {
                f->dead = !alive;
                f->hp = hp;
                f->hasHp = 1;
                if (!alive) {
                    f->hasTarget = 0;
                    memset(f->pendingSet, 0, sizeof f->pendingSet);
                    f->nPending = 0;
                }
            }
        } else if (kind == R_EVADE) {
            Seen *s = fighterLookup(f, a);
            if (s && s->npc) {
                s->evading = value == 1.0;
                if (s->evading && f->hasTarget && a == f->target) f->hasTarget = 0;
            }
        } else if (kind == R_RESOURCE && a == cid) {
            f->hasRes = 1;
            f->res = value;
        }
    }
}

/* --- what it does ------------------------------------------------------- */

/* Fighter.choose: the nearest living NPC not walking home (the lowest id of equals). */
static int choose(Fighter *f, double x, double z, uint32_t *out) {
    double bestD = INFINITY;
    int found = 0;
    for (uint32_t i = 0; i < f->cap; i++) {
        const Seen *s = &f->tab[i];
        if (!s->used || !s->npc || s->dead || s->evading) continue;
        double d = (s->x - x) * (s->x - x) + (s->z - z) * (s->z - z);
        if (d < bestD || (d == bestD && s->id < *out)) {
            bestD = d;
            *out = s->id;
            found = 1;
        }
    }
    return found;
}

/* Seen.hurt */
static double hurt(const Seen *s) {
    return s->hasHp && s->hpMax ? s->hp / s->hpMax : 1.0;
}

/* Fighter.mostHurt (the lowest id of equals) */
static int mostHurt(Fighter *f, double x, double z, const Ability *heal, uint32_t *out) {
    int found = 0;
    double share = HEAL_BELOW;
    if (!f->dead && f->hasHp && f->hpMax && f->hp / f->hpMax < share) {
        *out = f->cid;
        share = f->hp / f->hpMax;
        found = 1;
    }
    if (heal->target == TGT_SELF) return found;
    double r2 = heal->range * heal->range;
    for (uint32_t i = 0; i < f->cap; i++) {
        const Seen *s = &f->tab[i];
        if (!s->used || s->npc) continue;
        double h = hurt(s);
        if ((h < share || (h == share && found && s->id < *out)) && !s->dead &&
            (s->x - x) * (s->x - x) + (s->z - z) * (s->z - z) <= r2) {
            *out = s->id;
            share = h;
            found = 1;
        }
    }
    return found;
}

/* Fighter.usable */
static int usable(const Fighter *f, int slot, double now) {
    return f->readyAt[slot] <= now && (!f->hasRes || f->kit->ab[slot].cost <= f->res);
}

/* Fighter.expire */
static void expire(Fighter *f, double now) {
    if (!f->nPending) return;
    for (int i = 0; i < f->kit->n; i++) {
        if (f->pendingSet[i] && now - f->pendingAt[i] > REPLY_TIMEOUT) {
            f->pendingSet[i] = 0;
            f->nPending--;
            f->expired++;
        }
    }
}

static void act(Action *out, int what) {
    memset(out, 0, sizeof *out);
    out->what = what;
}

/* Fighter.decide */
void fighterDecide(Fighter *f, double x, double z, int moving, double now, Action *out) {
    const Kit *k = f->kit;
    if (f->dead) { act(out, ACT_STAND); return; }
    if (f->waiting && now - f->waitAt > REPLY_TIMEOUT) f->waiting = 0;
    expire(f, now);
    int free_ = now >= f->nextCast && now >= f->busyUntil && !f->waiting;
    if (f->healer && free_) {
        for (int i = 0; i < k->nHeals; i++) {
            int s = k->heals[i];
            uint32_t ally;
            if (usable(f, s, now) && mostHurt(f, x, z, &k->ab[s], &ally)) {
                if (moving) { act(out, ACT_STAND); return; }
                act(out, ACT_CAST);
                out->slot = s;
                out->hasTarget = 1;
                out->target = ally;
                return;
            }
        }
    }
    Seen *seen = f->hasTarget ? fighterLookup(f, f->target) : NULL;
    if (seen && !seen->npc) seen = NULL;
    if (!seen || seen->dead || seen->evading) {
        f->hasTarget = choose(f, x, z, &f->target);
        f->reach = k->reach;
        if (!f->hasTarget) { act(out, now < f->busyUntil ? ACT_STAND : ACT_IDLE); return; }
        seen = fighterLookup(f, f->target);
    }
    double d = hypot(seen->x - x, seen->z - z);
    if (now < f->busyUntil) { act(out, ACT_STAND); return; }
    if (d > f->reach) {
        act(out, ACT_WALK);
        out->tx = seen->x;
        out->tz = seen->z;
        return;
    }
    if (moving || !free_) { act(out, ACT_STAND); return; }
    for (int i = 0; i < k->nBuffs; i++) {
        if (usable(f, k->buffs[i], now)) {
            act(out, ACT_CAST);
            out->slot = k->buffs[i];
            return;
        }
    }
    for (int i = 0; i < k->nAttacks; i++) {
        int s = k->attacks[i];
        const Ability *a = &k->ab[s];
        if (usable(f, s, now) && d <= reachOf(a) - 0.5) {
            act(out, ACT_CAST);
            out->slot = s;
            if (a->target == TGT_AREA) {
                if (a->range > 0) {
                    out->hasXZ = 1;
                    out->x = seen->x;
                    out->z = seen->z;
                }
            } else {
                out->hasTarget = 1;
                out->target = f->target;
            }
            return;
        }
    }
    act(out, ACT_STAND);
}

/* --- what the server said ------------------------------------------------- */

/* Fighter.sent */
void fighterSent(Fighter *f, int64_t requestId, int slot, double now, int hasTarget, uint32_t target) {
    const Ability *a = &f->kit->ab[slot];
    f->waiting = 1;
    f->waitId = requestId;
    f->waitSlot = slot;
    f->waitAt = now;
    f->waitHasTarget = hasTarget;
    f->waitTarget = target;
    f->nextCast = now + (CAST_EVERY > a->gcd ? CAST_EVERY : a->gcd);
    double lock = lockOf(a);
    f->readyAt[slot] = lock ? now + a->cast + lock + COOLDOWN_SLACK : now;
    if (!f->pendingSet[slot]) f->nPending++;
    f->pendingSet[slot] = 1;
    f->pendingAt[slot] = now;
}

/* Fighter.accepted */
int fighterAccepted(Fighter *f, int64_t requestId, double castMs, double now) {
    if (!f->waiting || f->waitId != requestId) return 0;
    f->waiting = 0;
    if (castMs) {
        f->busyUntil = now + castMs / 1000.0 + 0.1;
        if (f->busyUntil > f->nextCast) f->nextCast = f->busyUntil;
    }
    return 1;
}

/* Fighter.refused */
int fighterRefused(Fighter *f, int64_t requestId, int code, int hasRetry, double retryAfter, double now) {
    if (!f->waiting || f->waitId != requestId) return 0;
    int slot = f->waitSlot;
    f->waiting = 0;
    if (f->pendingSet[slot]) {
        f->pendingSet[slot] = 0;
        f->nPending--;
    }
    switch (code) {
    case REFUSED_ON_COOLDOWN:
        f->readyAt[slot] = now + (hasRetry ? retryAfter : 1.0);
        f->nextCast = now;
        break;
    case REFUSED_OUT_OF_RANGE:
        f->reach = fmax(1.0, f->reach - 1.5);
        f->nextCast = now;
        break;
    case REFUSED_INVALID_TARGET: {
        Seen *s = f->waitHasTarget ? fighterLookup(f, f->waitTarget) : NULL;
        if (s && s->npc) s->evading = 1;
        if (f->waitHasTarget && f->hasTarget && f->waitTarget == f->target) f->hasTarget = 0;
        f->nextCast = now;
        break;
    }
    case REFUSED_NO_RESOURCE:
        f->readyAt[slot] = now + 3.0;
        f->nextCast = now;
        break;
    case REFUSED_BUSY:
        f->nextCast = now + 0.5;
        break;
    case REFUSED_DEAD:
        f->dead = 1;
        break;
    }
    return 1;
}

/* Fighter.revived */
void fighterRevived(Fighter *f) {
    f->dead = 0;
    f->hasTarget = 0;
}
