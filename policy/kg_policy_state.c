/*
 * kg_policy_state.c - the two non-pure parts of policy, behind one mutex:
 * the cache of successful credential verifications and the per-group token
 * buckets of limits.requests_per_second. Also the password hash checks.
 *
 * Why a cache: yescrypt costs tens of milliseconds by design, and vCenter
 * sends its credential on most requests of every task. Why it is safe: an
 * entry is HMAC-SHA-256(per-policy random key, group, username, password),
 * only stored after the real hash verified; it holds no password, and
 * without the key (which lives and dies with this state) it is no faster to
 * attack than the password hash itself. Failures are never cached, so a
 * wrong password always costs its full hash. The cache is bounded
 * (KG_POLICY_CRED_CACHE entries, oldest replaced).
 *
 * The mutex is held only for table lookups and updates, never across a
 * password hash.
 */
#include <crypt.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "kg_policy.h"
#include "kg_policy_internal.h"

#define KG_POLICY_CRED_CACHE 64
#define KG_POLICY_TAG_LEN 32

struct kg_policy_bucket {
    uint64_t milli_tokens; /* 1000 per request */
    uint64_t last_ms;
    bool started;
};

struct kg_policy_state {
    pthread_mutex_t lock;
    uint8_t cache_key[32];
    uint8_t cache[KG_POLICY_CRED_CACHE][KG_POLICY_TAG_LEN];
    bool cache_used[KG_POLICY_CRED_CACHE];
    size_t cache_next; /* round robin: the oldest entry goes first */
    struct kg_policy_bucket *buckets; /* one per group, same index */
    size_t bucket_count;
};

struct kg_policy_state *kg_policy_state_new(size_t group_count)
{
    struct kg_policy_state *state = calloc(1, sizeof(*state));

    if (state == NULL) {
        return NULL;
    }
    if (group_count > 0) {
        state->buckets = calloc(group_count, sizeof(*state->buckets));
        if (state->buckets == NULL) {
            free(state);
            return NULL;
        }
    }
    state->bucket_count = group_count;
    if (RAND_bytes(state->cache_key, sizeof(state->cache_key)) != 1 ||
        pthread_mutex_init(&state->lock, NULL) != 0) {
        OPENSSL_cleanse(state->cache_key, sizeof(state->cache_key));
        free(state->buckets);
        free(state);
        return NULL;
    }
    return state;
}

void kg_policy_state_free(struct kg_policy_state *state)
{
    if (state == NULL) {
        return;
    }
    pthread_mutex_destroy(&state->lock);
    free(state->buckets);
    OPENSSL_cleanse(state, sizeof(*state));
    free(state);
}

/* ---- credentials --------------------------------------------------------- */

/* Append a length-prefixed field, so ("ab","c") and ("a","bc") differ. */
static size_t kg_policy_tag_field(uint8_t *buf, size_t at, const void *data, size_t len)
{
    uint32_t n = (uint32_t)len;

    buf[at++] = (uint8_t)(n >> 24);
    buf[at++] = (uint8_t)(n >> 16);
    buf[at++] = (uint8_t)(n >> 8);
    buf[at++] = (uint8_t)n;
    if (len > 0) {
        memcpy(buf + at, data, len);
    }
    return at + len;
}

static bool kg_policy_cache_tag(const struct kg_policy_state *state, const struct kg_policy_group *g,
                                const char *username, size_t username_len, const char *password,
                                size_t password_len, uint8_t tag[KG_POLICY_TAG_LEN])
{
    /* Group names are at most 64 bytes (the loader's limit); the rest are capped by the caller. */
    uint8_t buf[12 + 256 + 1 + KG_POLICY_MAX_USERNAME + KG_POLICY_MAX_PASSWORD]; /* 1: the kind */
    size_t name_len = strlen(g->name), n = 0;
    unsigned int tag_len = 0;
    bool ok;

    if (name_len > 256) {
        return false;
    }
    n = kg_policy_tag_field(buf, n, g->name, name_len);
    n = kg_policy_tag_field(buf, n, username, username_len);
    n = kg_policy_tag_field(buf, n, password, password_len);
    ok = HMAC(EVP_sha256(), state->cache_key, sizeof(state->cache_key), buf, n, tag, &tag_len) != NULL &&
         tag_len == KG_POLICY_TAG_LEN;
    OPENSSL_cleanse(buf, sizeof(buf));
    return ok;
}

static bool kg_policy_cache_find(struct kg_policy_state *state, const uint8_t tag[KG_POLICY_TAG_LEN])
{
    bool hit = false;

    pthread_mutex_lock(&state->lock);
    for (size_t i = 0; i < KG_POLICY_CRED_CACHE; i++) {
        /* Every slot is compared, hit or not: the time says nothing about which. */
        hit |= state->cache_used[i] && CRYPTO_memcmp(state->cache[i], tag, KG_POLICY_TAG_LEN) == 0;
    }
    pthread_mutex_unlock(&state->lock);
    return hit;
}

static void kg_policy_cache_add(struct kg_policy_state *state, const uint8_t tag[KG_POLICY_TAG_LEN])
{
    pthread_mutex_lock(&state->lock);
    memcpy(state->cache[state->cache_next], tag, KG_POLICY_TAG_LEN);
    state->cache_used[state->cache_next] = true;
    state->cache_next = (state->cache_next + 1) % KG_POLICY_CRED_CACHE;
    pthread_mutex_unlock(&state->lock);
}

/* crypt(3) of `phrase` under `setting`, compared in constant time with `hash`. */
static bool kg_policy_hash_matches(const char *phrase, const char *hash)
{
    struct crypt_data *work = calloc(1, sizeof(*work));
    size_t hash_len = strlen(hash);
    const char *out;
    bool ok = false;

    if (work == NULL) {
        return false; /* fail closed */
    }
    out = crypt_rn(phrase, hash, work, (int)sizeof(*work));
    /* A failure is NULL (crypt_rn) or a string starting with '*'. */
    if (out != NULL && out[0] != '*' && strlen(out) == hash_len) {
        ok = CRYPTO_memcmp(out, hash, hash_len) == 0;
    }
    /* The work area held the phrase and the state derived from it. */
    OPENSSL_cleanse(work, sizeof(*work));
    free(work);
    return ok;
}

/* Does (kind, username) name credential `c`? Constant time in the bytes. */
static bool kg_policy_credential_names(const struct kg_policy_credential *c, uint32_t kind, const char *username,
                                       size_t username_len)
{
    /* The username is not secret, but compared the same way as everything else here. */
    return c->username != NULL && c->password_hash != NULL && (uint32_t)c->kind == kind &&
           strlen(c->username) == username_len &&
           (username_len == 0 || CRYPTO_memcmp(c->username, username, username_len) == 0);
}

const struct kg_policy_credential *kg_policy_credential_verify(const struct kg_policy *policy,
                                                              const struct kg_policy_group *g, uint32_t kind,
                                 const char *username, size_t username_len, const char *password,
                                 size_t password_len)
{
    const struct kg_policy_credential *c = &g->credential;
    struct kg_policy_state *state = policy != NULL ? policy->state : NULL;
    char phrase[KG_POLICY_MAX_PASSWORD + 1];
    uint8_t tag[KG_POLICY_TAG_LEN];
    bool have_tag = false, ok = false;

    if (!c->present) {
        return NULL;
    }
    if (username_len > KG_POLICY_MAX_USERNAME || password_len > KG_POLICY_MAX_PASSWORD ||
        (username == NULL && username_len > 0) || (password == NULL && password_len > 0)) {
        return NULL;
    }
    /* crypt(3) stops at a NUL: "right\0anything" must not pass as "right". */
    if (password_len > 0 && memchr(password, '\0', password_len) != NULL) {
        return NULL;
    }
    while (c != NULL && !kg_policy_credential_names(c, kind, username, username_len)) {
        c = c->next;
    }
    if (c == NULL) {
        return NULL;
    }
    if (state != NULL) {
        /* The kind is part of the name: a Device and a user of one name differ. */
        char kinded[KG_POLICY_MAX_USERNAME + 1];

        kinded[0] = (char)('0' + kind);
        memcpy(kinded + 1, username, username_len);
        have_tag = kg_policy_cache_tag(state, g, kinded, username_len + 1, password, password_len, tag);
        if (have_tag && kg_policy_cache_find(state, tag)) {
            OPENSSL_cleanse(tag, sizeof(tag));
            return c;
        }
    }
    if (password_len > 0) {
        memcpy(phrase, password, password_len);
    }
    phrase[password_len] = '\0';
    ok = kg_policy_hash_matches(phrase, c->password_hash);
    OPENSSL_cleanse(phrase, sizeof(phrase));
    if (ok && have_tag) {
        kg_policy_cache_add(state, tag);
    }
    OPENSSL_cleanse(tag, sizeof(tag));
    return ok ? c : NULL;
}

bool kg_policy_hash_check(const char *hash, const char **why)
{
    struct crypt_data *work;
    const char *out;
    bool ok;

    /* DES hashes have no '$', and neither has a password written in by mistake. */
    if (hash[0] != '$') {
        *why = "is not a crypt(3) hash: it starts with $y$ (yescrypt) or $6$ (sha512crypt); never write the "
               "password itself";
        return false;
    }
    switch (crypt_checksalt(hash)) {
    case CRYPT_SALT_OK:
        break;
    case CRYPT_SALT_METHOD_LEGACY:
        *why = "uses a legacy method: use yescrypt ($y$) or sha512crypt ($6$)";
        return false;
    case CRYPT_SALT_METHOD_DISABLED:
        *why = "uses a method this system's libcrypt does not support";
        return false;
    case CRYPT_SALT_TOO_CHEAP:
        *why = "is too cheap to compute: use yescrypt ($y$) or sha512crypt ($6$) with default cost";
        return false;
    default:
        *why = "is not a crypt(3) password hash (e.g. from mkpasswd -m yescrypt)";
        return false;
    }
    /*
     * crypt_checksalt only reads the prefix. Hashing once proves the whole
     * string is well formed, and a result of a different length means it is
     * a bare salt ("$y$j9T$salt") with no hash, which no password matches.
     */
    work = calloc(1, sizeof(*work));
    if (work == NULL) {
        *why = "could not be checked: out of memory";
        return false;
    }
    out = crypt_rn("", hash, work, (int)sizeof(*work));
    ok = out != NULL && out[0] != '*' && strlen(out) == strlen(hash);
    OPENSSL_cleanse(work, sizeof(*work));
    free(work);
    if (!ok) {
        *why = "is not a complete crypt(3) hash (a salt alone, or damaged)";
    }
    return ok;
}

/* ---- fingerprints -------------------------------------------------------- */

static int kg_policy_hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

bool kg_policy_parse_sha256(const char *text, size_t len, uint8_t out[32])
{
    bool colons;
    size_t at = 0;

    if (text == NULL) {
        return false;
    }
    if (len == 64) {
        colons = false;
    } else if (len == 95) {
        colons = true;
    } else {
        return false;
    }
    for (size_t i = 0; i < 32; i++) {
        int hi, lo;

        if (colons && i > 0) {
            if (text[at] != ':') {
                return false;
            }
            at++;
        }
        hi = kg_policy_hex_digit(text[at]);
        lo = kg_policy_hex_digit(text[at + 1]);
        if (hi < 0 || lo < 0) {
            return false;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
        at += 2;
    }
    return true;
}

/* ---- rate limits --------------------------------------------------------- */

struct kg_policy_decision kg_policy_rate_check(struct kg_policy *policy, const struct kg_policy_group *g,
                                               uint64_t now_ms)
{
    struct kg_policy_decision d = { .verdict = KG_POLICY_DENY_RATE, .group = g, .rule = "limits", .line = 0 };
    struct kg_policy_bucket *b;
    uint64_t cap, rate;
    size_t index = SIZE_MAX;

    if (g == NULL) {
        return d; /* fail closed: no group, no requests */
    }
    if (g->rule_text[KG_RULE_REQUESTS_PER_SECOND] != NULL) {
        d.rule = g->rule_text[KG_RULE_REQUESTS_PER_SECOND];
        d.line = g->rule_line[KG_RULE_REQUESTS_PER_SECOND];
    }
    if (g->requests_per_second == 0) {
        d.verdict = KG_POLICY_ALLOW;
        return d;
    }
    for (size_t i = 0; policy != NULL && i < policy->group_count; i++) {
        if (&policy->groups[i] == g) {
            index = i;
            break;
        }
    }
    if (index == SIZE_MAX || policy->state == NULL || index >= policy->state->bucket_count) {
        return d; /* a group of another policy: fail closed */
    }
    rate = g->requests_per_second;
    cap = rate * 1000; /* one second's worth, in thousandths of a request */
    pthread_mutex_lock(&policy->state->lock);
    b = &policy->state->buckets[index];
    if (!b->started) {
        b->milli_tokens = cap;
        b->started = true;
    } else if (now_ms > b->last_ms) {
        /* After a second the bucket is full whatever the gap, so the product cannot overflow. */
        uint64_t elapsed = now_ms - b->last_ms;

        if (elapsed > 1000) {
            elapsed = 1000;
        }
        b->milli_tokens += elapsed * rate;
        if (b->milli_tokens > cap) {
            b->milli_tokens = cap;
        }
    }
    b->last_ms = now_ms; /* a clock that went back re-bases without refilling */
    if (b->milli_tokens >= 1000) {
        b->milli_tokens -= 1000;
        d.verdict = KG_POLICY_ALLOW;
    }
    pthread_mutex_unlock(&policy->state->lock);
    return d;
}

bool kg_policy_rate_allow(struct kg_policy *policy, const struct kg_policy_group *g, uint64_t now_ms)
{
    return kg_policy_rate_check(policy, g, now_ms).verdict == KG_POLICY_ALLOW;
}
