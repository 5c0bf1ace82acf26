/*
 * w2mindcheck: runs a script of a W2 fighter's inputs through bench/w2mind.c
 * and prints what the mind says, line for line as
 * mmoshard/bots/test/test_w2gen.py prints it for mmoshard/bots/combat.py's
 * Fighter on the same script (the two must match).  Script lines on stdin:
 *
 *   ability ID NUM KIND TARGET RANGE RADIUS CAST COOLDOWN GCD COST DURATION
 *   fighter CID HEALER              (a kit of the abilities so far, in order)
 *   self HASHP HP HPMAX HASRES RES
 *   enter ID NPC X Z HASHP HP HPMAX DEAD HASEV EV
 *   leave ID
 *   moves HEX                       (packed move records)
 *   combat NOW HEX                  (packed combat records)
 *   decide X Z MOVING NOW           -> "do idle|stand|walk TX TZ|cast ABILITY TARGET|- X|- Z|-"
 *   sent REQ ABILITY NOW HASTARGET TARGET
 *   accepted REQ CASTMS NOW         -> "accepted 0|1"
 *   refused REQ CODE HASRETRY RETRY NOW  -> "refused 0|1"
 *   revived
 *   state                           -> "state ..." and one "seen ..." line per entity
 *
 *   gcc -O2 -o w2mindcheck bench/w2mindcheck.c bench/w2mind.c -lm
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "w2mind.h"

static Ability abilities[KIT_MAX];
static int nAbilities;
static Kit kit;
static Fighter f;

static void g(double v) { printf(" %.17g", v); }

static size_t unhex(const char *s, uint8_t *out, size_t cap) {
    size_t n = 0;
    while (s[0] && s[1] && s[0] != '\n' && n < cap) {
        unsigned v;
        if (sscanf(s, "%2x", &v) != 1) break;
        out[n++] = (uint8_t)v;
        s += 2;
    }
    return n;
}

static int slotOf(const char *id) {
    for (int i = 0; i < kit.n; i++)
        if (strlen(id) == kit.ab[i].idLen && memcmp(id, kit.ab[i].id, kit.ab[i].idLen) == 0) return i;
    fprintf(stderr, "w2mindcheck: no ability %s\n", id);
    exit(2);
}

static int codeOf(const char *c) {
    static const char *codes[] = {"combat.on_cooldown", "combat.out_of_range", "combat.invalid_target",
                                  "combat.no_resource", "combat.busy", "combat.dead"};
    for (int i = 0; i < REFUSED_OTHER; i++)
        if (strcmp(c, codes[i]) == 0) return i;
    return REFUSED_OTHER;
}

static int cmpU32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void state(void) {
    printf("state dead=%d target=", f.dead);
    if (f.hasTarget) printf("%u", f.target); else printf("-");
    printf(" kills=%ld expired=%ld events=%ld self=", f.kills, f.expired, f.events);
    if (f.hasHp && f.hpMax) printf("%.17g", f.hp / f.hpMax); else printf("-");
    printf(" res=");
    if (f.hasRes) printf("%.17g", f.res); else printf("-");
    printf(" reach=%.17g next=%.17g busy=%.17g waiting=", f.reach, f.nextCast, f.busyUntil);
    if (f.waiting) {
        printf("%lld/%s/%.17g/", (long long)f.waitId, kit.ab[f.waitSlot].id, f.waitAt);
        if (f.waitHasTarget) printf("%u", f.waitTarget); else printf("-");
    } else {
        printf("-");
    }
    printf(" ready");
    for (int i = 0; i < kit.n; i++) g(f.readyAt[i]);
    /* pending by ability number */
    int order[KIT_MAX], n = 0;
    for (int i = 0; i < kit.n; i++)
        if (f.pendingSet[i]) order[n++] = i;
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && kit.ab[order[j]].num < kit.ab[order[j - 1]].num; j--) {
            int t = order[j]; order[j] = order[j - 1]; order[j - 1] = t;
        }
    printf(" pending");
    for (int i = 0; i < n; i++) printf(" %d@%.17g", kit.ab[order[i]].num, f.pendingAt[order[i]]);
    printf(" effects");
    for (int i = 0; i < f.nEffects; i++) g(f.effects[i]);
    f.nEffects = 0;
    printf("\n");
    uint32_t *ids = malloc((f.count + 1) * sizeof *ids);
    uint32_t m = 0;
    for (uint32_t i = 0; i < f.cap; i++)
        if (f.tab[i].used) ids[m++] = f.tab[i].id;
    qsort(ids, m, sizeof *ids, cmpU32);
    for (uint32_t i = 0; i < m; i++) {
        Seen *s = fighterLookup(&f, ids[i]);
        double hurt = s->hasHp && s->hpMax ? s->hp / s->hpMax : 1.0;
        printf("seen %u %d %.17g %.17g %.17g %d %d\n", s->id, s->npc, s->x, s->z, hurt, s->dead, s->evading);
    }
    free(ids);
}

int main(void) {
    static char line[1 << 16];
    static uint8_t blob[1 << 15];
    while (fgets(line, sizeof line, stdin)) {
        char w[32], id[64], kind[32], target[32], code[64];
        double x, z, hp, hpMax, now, v;
        int a, b2, c, d, e;
        unsigned u, t;
        long long req;
        if (sscanf(line, "%31s", w) != 1) continue;
        if (!strcmp(w, "ability")) {
            Ability *ab = &abilities[nAbilities++];
            memset(ab, 0, sizeof *ab);
            sscanf(line, "ability %63s %d %31s %31s %lf %lf %lf %lf %lf %lf %lf", id, &ab->num, kind,
                   target, &ab->range, &ab->radius, &ab->cast, &ab->cooldown, &ab->gcd, &ab->cost,
                   &ab->duration);
            ab->idLen = (uint8_t)strlen(id);
            memcpy(ab->id, id, ab->idLen);
            ab->kind = kindOf((const uint8_t *)kind, strlen(kind));
            ab->target = targetOf((const uint8_t *)target, strlen(target));
        } else if (!strcmp(w, "fighter")) {
            sscanf(line, "fighter %u %d", &u, &a);
            kitBuild(&kit, "check", 5, abilities, nAbilities);
            fighterInit(&f, u, &kit, a);
        } else if (!strcmp(w, "self")) {
            sscanf(line, "self %d %lf %lf %d %lf", &a, &hp, &hpMax, &b2, &v);
            f.hasHp = a; f.hp = hp; f.hpMax = hpMax; f.hasRes = b2; f.res = v;
        } else if (!strcmp(w, "enter")) {
            sscanf(line, "enter %u %d %lf %lf %d %lf %lf %d %d %d", &u, &a, &x, &z, &b2, &hp, &hpMax, &c,
                   &d, &e);
            fighterEnter(&f, u, a, x, z, b2, hp, hpMax, c, d, e);
        } else if (!strcmp(w, "leave")) {
            sscanf(line, "leave %u", &u);
            fighterLeave(&f, u);
        } else if (!strcmp(w, "moves")) {
            fighterMoves(&f, blob, unhex(line + 6, blob, sizeof blob));
        } else if (!strcmp(w, "combat")) {
            int off;
            sscanf(line, "combat %lf %n", &now, &off);
            fighterCombat(&f, blob, unhex(line + off, blob, sizeof blob), now);
        } else if (!strcmp(w, "decide")) {
            Action act;
            sscanf(line, "decide %lf %lf %d %lf", &x, &z, &a, &now);
            fighterDecide(&f, x, z, a, now, &act);
            if (act.what == ACT_IDLE) printf("do idle\n");
            else if (act.what == ACT_STAND) printf("do stand\n");
            else if (act.what == ACT_WALK) printf("do walk %.17g %.17g\n", act.tx, act.tz);
            else {
                printf("do cast %s ", kit.ab[act.slot].id);
                if (act.hasTarget) printf("%u", act.target); else printf("-");
                if (act.hasXZ) printf(" %.17g %.17g\n", act.x, act.z); else printf(" - -\n");
            }
        } else if (!strcmp(w, "sent")) {
            sscanf(line, "sent %lld %63s %lf %d %u", &req, id, &now, &a, &t);
            fighterSent(&f, req, slotOf(id), now, a, t);
        } else if (!strcmp(w, "accepted")) {
            sscanf(line, "accepted %lld %lf %lf", &req, &v, &now);
            printf("accepted %d\n", fighterAccepted(&f, req, v, now));
        } else if (!strcmp(w, "refused")) {
            sscanf(line, "refused %lld %63s %d %lf %lf", &req, code, &a, &v, &now);
            printf("refused %d\n", fighterRefused(&f, req, codeOf(code), a, v, now));
        } else if (!strcmp(w, "revived")) {
            fighterRevived(&f);
        } else if (!strcmp(w, "state")) {
            state();
        } else {
            fprintf(stderr, "w2mindcheck: bad line %s", line);
            return 2;
        }
    }
    return 0;
}
