/* kg_secret.c - locked, undumpable, wiped-on-free memory. */
#include "kg_secret.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

/*
 * One-page regions are the common case (a PIN, a key, a response). mmap,
 * mlock and munmap for each cost more than the work around them, so freed
 * one-page regions, wiped, wait here for reuse, still locked and excluded
 * from core dumps. Shared by all threads: a response is made by a worker
 * and freed by the event loop.
 */
#define KG_SECRET_CACHE 64
static pthread_mutex_t kg_secret_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *kg_secret_cache[KG_SECRET_CACHE];
static size_t kg_secret_cached;

static uint8_t *kg_secret_cache_take(size_t map_len, size_t page)
{
    uint8_t *p = NULL;

    if (map_len != page) {
        return NULL;
    }
    pthread_mutex_lock(&kg_secret_cache_lock);
    if (kg_secret_cached > 0) {
        p = kg_secret_cache[--kg_secret_cached];
    }
    pthread_mutex_unlock(&kg_secret_cache_lock);
    return p;
}

/* Returns true when the (already wiped) region was kept. */
static bool kg_secret_cache_put(uint8_t *p, size_t map_len, size_t page)
{
    bool kept = false;

    if (map_len != page) {
        return false;
    }
    pthread_mutex_lock(&kg_secret_cache_lock);
    if (kg_secret_cached < KG_SECRET_CACHE) {
        kg_secret_cache[kg_secret_cached++] = p;
        kept = true;
    }
    pthread_mutex_unlock(&kg_secret_cache_lock);
    return kept;
}

kg_result kg_secret_alloc(size_t cap, struct kg_secret **out)
{
    struct kg_secret *s = NULL;
    long page = sysconf(_SC_PAGESIZE);
    size_t map_len;

    *out = NULL;
    KG_ENSURE(page > 0, KG_ERR_INTERNAL);
    KG_ENSURE(cap <= (size_t)1 << 30, KG_ERR_NOMEM);
    map_len = ((cap ? cap : 1) + (size_t)page - 1) / (size_t)page * (size_t)page;

    s = calloc(1, sizeof(*s));
    KG_ENSURE(s != NULL, KG_ERR_NOMEM);
    s->data = kg_secret_cache_take(map_len, (size_t)page);
    if (s->data != NULL) {
        s->cap = cap;
        s->map_len = map_len;
        *out = s;
        return KG_RESULT_OK;
    }
    /* A private anonymous mapping of our own: it can be locked and excluded
     * from core dumps without touching any malloc arena. */
    s->data = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (s->data == MAP_FAILED) {
        free(s);
        KG_BAIL(KG_ERR_NOMEM);
    }
    if (mlock(s->data, map_len) != 0) {
        munmap(s->data, map_len);
        free(s);
        KG_BAIL(KG_ERR_LOCK);
    }
    (void)madvise(s->data, map_len, MADV_DONTDUMP);
    s->cap = cap;
    s->map_len = map_len;
    *out = s;
    return KG_RESULT_OK;
}

kg_result kg_secret_from(const void *src, size_t len, struct kg_secret **out)
{
    KG_GUARD(kg_secret_alloc(len, out));
    if (len > 0) {
        memcpy((*out)->data, src, len);
    }
    (*out)->len = len;
    return KG_RESULT_OK;
}

void kg_secret_free(struct kg_secret *s)
{
    if (s == NULL) {
        return;
    }
    OPENSSL_cleanse(s->data, s->map_len);
    if (!kg_secret_cache_put(s->data, s->map_len, (size_t)sysconf(_SC_PAGESIZE))) {
        munlock(s->data, s->map_len);
        munmap(s->data, s->map_len);
    }
    OPENSSL_cleanse(s, sizeof(*s));
    free(s);
}

/*
 * Append what `fd` holds to `s` until EOF or s->cap. Straight into locked
 * memory: no stdio buffer keeps a copy. read() may return less than asked
 * (pipes, FUSE, signals), hence the loop. `path` is for the message only.
 */
static kg_result kg_secret_read_fd(int fd, const char *path, struct kg_secret *s)
{
    while (s->len < s->cap) {
        ssize_t n = read(fd, s->data + s->len, s->cap - s->len);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            kg_error_set(KG_ERR_IO, __FILE__, __LINE__);
            kg_error_detail("cannot read %s: %s", path, strerror(errno));
            return KG_RESULT_ERROR;
        }
        if (n == 0) {
            break;
        }
        s->len += (size_t)n;
    }
    return KG_RESULT_OK;
}

kg_result kg_secret_read_file(const char *path, size_t max, struct kg_secret **out)
{
    struct kg_secret *s = NULL;
    kg_result rc = KG_RESULT_OK;
    struct stat st;
    int fd;

    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        kg_error_set(KG_ERR_CONFIG, __FILE__, __LINE__);
        kg_error_detail("cannot open %s: %s", path, strerror(errno));
        return KG_RESULT_ERROR;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        kg_error_set(KG_ERR_CONFIG, __FILE__, __LINE__);
        kg_error_detail("%s is not a regular file", path);
        rc = KG_RESULT_ERROR;
        goto out;
    }
    if ((st.st_mode & 077) != 0) {
        kg_error_set(KG_ERR_CONFIG, __FILE__, __LINE__);
        kg_error_detail("%s has mode %04o: a private key must be readable by its owner only (chmod 600 %s)", path,
                        (unsigned)(st.st_mode & 07777), path);
        rc = KG_RESULT_ERROR;
        goto out;
    }
    /* One byte over the cap, so that a file longer than `max` is seen as such. */
    KG_GOTO_GUARD(rc, kg_secret_alloc(max + 1, &s));
    KG_GOTO_GUARD(rc, kg_secret_read_fd(fd, path, s));
    if (s->len > max) {
        kg_error_set(KG_ERR_CONFIG, __FILE__, __LINE__);
        kg_error_detail("%s is larger than %zu bytes: refused", path, max);
        rc = KG_RESULT_ERROR;
        goto out;
    }
    *out = s;
    s = NULL;
out:
    close(fd);
    kg_secret_free(s);
    return rc;
}

kg_result kg_secret_read_pin(const char *path, const char *env, struct kg_secret **out)
{
    enum { PIN_MAX = 256 };
    struct kg_secret *s = NULL;
    kg_result rc = KG_RESULT_OK;
    const uint8_t *nl = NULL;
    int fd = -1;

    *out = NULL;
    KG_GUARD(kg_secret_alloc(PIN_MAX, &s));
    if (path != NULL) {
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            kg_error_set(KG_ERR_CONFIG, __FILE__, __LINE__);
            kg_error_detail("cannot open PIN file %s: %s", path, strerror(errno));
            rc = KG_RESULT_ERROR;
            goto out;
        }
        KG_GOTO_GUARD(rc, kg_secret_read_fd(fd, path, s));
        /* The PIN is the first line; whatever follows is not ours to keep. */
        nl = memchr(s->data, '\n', s->len);
        if (nl != NULL) {
            size_t first = (size_t)(nl - s->data);

            OPENSSL_cleanse(s->data + first, s->len - first);
            s->len = first;
        } else if (s->len == PIN_MAX) {
            kg_error_set(KG_ERR_CONFIG, __FILE__, __LINE__);
            kg_error_detail("PIN in %s is longer than %d bytes", path, PIN_MAX - 1);
            rc = KG_RESULT_ERROR;
            goto out;
        }
    } else {
        const char *value = env ? getenv(env) : NULL;
        if (value == NULL) {
            kg_error_set(KG_ERR_CONFIG, __FILE__, __LINE__);
            kg_error_detail("no PIN: set hsm.pin_file or the environment variable %s", env ? env : "(none)");
            rc = KG_RESULT_ERROR;
            goto out;
        }
        s->len = strnlen(value, PIN_MAX);
        memcpy(s->data, value, s->len);
        if (s->len == PIN_MAX) {
            kg_error_set(KG_ERR_CONFIG, __FILE__, __LINE__);
            kg_error_detail("PIN in %s is longer than %d bytes", env, PIN_MAX - 1);
            rc = KG_RESULT_ERROR;
            goto out;
        }
    }
    while (s->len > 0 && (s->data[s->len - 1] == '\n' || s->data[s->len - 1] == '\r')) {
        s->data[--s->len] = 0;
    }
    if (s->len == 0 || memchr(s->data, '\n', s->len) != NULL) {
        kg_error_set(KG_ERR_CONFIG, __FILE__, __LINE__);
        kg_error_detail("%s %s holds no usable PIN (empty, or a line break inside)",
                        path != NULL ? "PIN file" : "environment variable", path != NULL ? path : env);
        rc = KG_RESULT_ERROR;
        goto out;
    }
    *out = s;
    s = NULL;
out:
    if (fd >= 0) {
        close(fd);
    }
    kg_secret_free(s);
    return rc;
}

void kg_secret_process_harden(void)
{
    struct rlimit no_core = { 0, 0 };

    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    (void)setrlimit(RLIMIT_CORE, &no_core);
}
