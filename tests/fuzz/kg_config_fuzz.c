/*
 * kg_config_fuzz.c - fuzz target: the gateway.yaml parser (gateway/kg_config.c).
 *
 * kg_config_load takes a path, so the input is written to a temporary file
 * first. The file is created once per process (mkstemp in /tmp), rewritten
 * for every input and removed at exit: it carries nothing from one input to
 * the next, since every input replaces it whole.
 *
 * Checked besides what the sanitizers see, from kg_config.h:
 *  - success means a configuration with every required key, the documented
 *    ranges and absolute paths; failure means none and an error whose text
 *    holds no control characters (it goes to the log).
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "kg_config.h"
#include "kg_fuzz.h"
#include "kg_p11_uri.h"

static char kg_fuzz_path[] = "/tmp/kg_config_fuzz_XXXXXX";
static int kg_fuzz_fd = -1;

static void kg_fuzz_remove_file(void)
{
    if (kg_fuzz_fd >= 0) {
        close(kg_fuzz_fd);
        unlink(kg_fuzz_path);
        kg_fuzz_fd = -1;
    }
}

/* Make the temporary file hold exactly `data`. */
static void kg_fuzz_write_file(const uint8_t *data, size_t size)
{
    size_t done = 0;

    if (kg_fuzz_fd < 0) {
        kg_fuzz_fd = mkstemp(kg_fuzz_path);
        KG_FUZZ_CHECK(kg_fuzz_fd >= 0);
        atexit(kg_fuzz_remove_file);
    }
    KG_FUZZ_CHECK(ftruncate(kg_fuzz_fd, 0) == 0);
    while (done < size) {
        ssize_t n = pwrite(kg_fuzz_fd, data + done, size - done, (off_t)done);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        KG_FUZZ_CHECK(n > 0);
        done += (size_t)n;
    }
}

static bool kg_fuzz_clean_text(const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (c < 0x20 || c == 0x7F) {
            return false;
        }
    }
    return true;
}

/* Optional paths may be NULL; any path given is absolute. */
static bool kg_fuzz_path_ok(const char *path, bool required)
{
    return path == NULL ? !required : path[0] == '/';
}

static void kg_fuzz_check_config(const struct kg_config *cfg)
{
    KG_FUZZ_CHECK(cfg->listen_address != NULL && cfg->listen_address[0] != '\0');
    KG_FUZZ_CHECK(cfg->listen_port >= 1);
    KG_FUZZ_CHECK(kg_fuzz_path_ok(cfg->tls_certificate, true));
    /* tls.key is a file or a PKCS#11 URI naming a key on the token. */
    KG_FUZZ_CHECK(kg_p11_uri_is(cfg->tls_key) || kg_fuzz_path_ok(cfg->tls_key, true));
    KG_FUZZ_CHECK(kg_fuzz_path_ok(cfg->tls_client_ca, true));
    KG_FUZZ_CHECK(kg_fuzz_path_ok(cfg->hsm_module, true));
    KG_FUZZ_CHECK(kg_fuzz_path_ok(cfg->hsm_pin_file, false));
    KG_FUZZ_CHECK(kg_fuzz_path_ok(cfg->store_path, true));
    KG_FUZZ_CHECK(kg_fuzz_path_ok(cfg->policy_path, true));
    KG_FUZZ_CHECK(kg_fuzz_path_ok(cfg->audit_path, false));
    KG_FUZZ_CHECK(cfg->hsm_token_label != NULL && strlen(cfg->hsm_token_label) >= 1 &&
                  strlen(cfg->hsm_token_label) <= 32);
    KG_FUZZ_CHECK(cfg->hsm_pin_file != NULL || cfg->hsm_pin_env != NULL);
    KG_FUZZ_CHECK(cfg->hsm_mwk_label != NULL);
    KG_FUZZ_CHECK(cfg->hsm_sessions >= 1 && cfg->hsm_sessions <= 1024);
    KG_FUZZ_CHECK(cfg->max_message_bytes >= 1024 && cfg->max_message_bytes <= 16u * 1024 * 1024);
    KG_FUZZ_CHECK(cfg->max_depth >= 4 && cfg->max_depth <= 64);
    KG_FUZZ_CHECK(cfg->max_items >= 16 && cfg->max_items <= 1024u * 1024);
    KG_FUZZ_CHECK(cfg->max_batch_items >= 1 && cfg->max_batch_items <= 4096);
    KG_FUZZ_CHECK(cfg->workers >= 1 && cfg->workers <= 1024);
    KG_FUZZ_CHECK(cfg->max_pending >= 1 && cfg->max_pending <= 65536);
    KG_FUZZ_CHECK(cfg->handshake_timeout_ms >= 100 && cfg->handshake_timeout_ms <= 600000);
    KG_FUZZ_CHECK(cfg->idle_timeout_ms >= 1000 && cfg->idle_timeout_ms <= 86400000);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kg_config *cfg = NULL;

    kg_fuzz_write_file(data, size);
    kg_error_clear();
    if (kg_ok(kg_config_load(kg_fuzz_path, &cfg))) {
        KG_FUZZ_CHECK(cfg != NULL);
        kg_fuzz_check_config(cfg);
    } else {
        KG_FUZZ_CHECK(cfg == NULL && kg_errno() != KG_OK);
        KG_FUZZ_CHECK(kg_fuzz_clean_text(kg_error_text()));
    }
    kg_config_free(cfg);
    return 0;
}
