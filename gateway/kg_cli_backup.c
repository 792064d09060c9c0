/*
 * kg_cli_backup.c - kmipgw backup and kmipgw restore: the store's rows
 * into a new SQLite file and back (kg_store_copy).
 *
 * A backup holds wrapped keys only: it is useless without the HSM's master
 * key, and the HSM's own backup (or, for tests, a copy of the SoftHSM token
 * directory) is the other half. It needs no HSM to take: the gateway keeps
 * serving, and nothing is unwrapped.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kg_cli.h"
#include "kg_config.h"
#include "kg_store.h"

static int kg_backup_usage(const char *cmd)
{
    fprintf(stderr,
            "usage: kmipgw %s --config FILE %s\n"
            "  backup:  copy the configured store, as it is at one instant, into a new SQLite file\n"
            "           (mode 0600) while gateways keep serving; FILE must not exist\n"
            "  restore: copy a backup file into the configured store, which must hold no object\n",
            cmd, strcmp(cmd, "backup") == 0 ? "OUT.db" : "IN.db");
    return 2;
}

static void kg_backup_error(const char *cmd, const char *what)
{
    fprintf(stderr, "kmipgw %s: %s: %s%s%s\n", cmd, what, kg_error_name(kg_errno()), kg_error_text()[0] ? ": " : "",
            kg_error_text());
}

/* Remove a SQLite file and its -wal and -shm companions, if there. */
static void kg_backup_remove(const char *file)
{
    static const char *const suffixes[] = { "", "-wal", "-shm" };
    char path[4096];

    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        int n = snprintf(path, sizeof(path), "%s%s", file, suffixes[i]);

        if (n > 0 && (size_t)n < sizeof(path)) {
            (void)unlink(path);
        }
    }
}

int kg_cli_backup(int argc, char **argv)
{
    const char *cmd = argv[0], *config_path = NULL, *file = NULL;
    bool backup = strcmp(cmd, "backup") == 0;
    struct kg_config *cfg = NULL;
    struct kg_store *configured = NULL, *copy = NULL;
    struct kg_store_copy_counts counts;
    struct stat sb;
    int status = 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config_path = argv[++i];
        } else if (argv[i][0] != '-' && file == NULL) {
            file = argv[i];
        } else {
            return kg_backup_usage(cmd);
        }
    }
    if (config_path == NULL || file == NULL) {
        return kg_backup_usage(cmd);
    }
    /* kg_store_open creates a missing file: a backup must not overwrite
     * one, and a restore must not invent an empty one. */
    if (backup && stat(file, &sb) == 0) {
        fprintf(stderr, "kmipgw backup: %s exists; refusing to overwrite it\n", file);
        return 1;
    }
    if (kg_failed(kg_config_load(config_path, &cfg))) {
        kg_backup_error(cmd, "configuration");
        goto out;
    }
    if (kg_failed(kg_store_open(cfg->store_path, &configured))) {
        kg_backup_error(cmd, "store");
        goto out;
    }
    if (kg_failed(backup ? kg_store_open(file, &copy) : kg_store_open_existing(file, &copy))) {
        kg_backup_error(cmd, file);
        goto out;
    }
    if (kg_failed(backup ? kg_store_copy(configured, copy, &counts) : kg_store_copy(copy, configured, &counts))) {
        kg_backup_error(cmd, backup ? "copying the store" : "restoring into the store");
        goto out;
    }
    printf("%s: %llu objects, %llu attributes %s %s (%s)\n", cmd, (unsigned long long)counts.objects,
           (unsigned long long)counts.attributes, backup ? "written to" : "restored from", file,
           backup ? "wrapped keys only: keep the HSM's backup of the master key too" : "the same HSM token");
    status = 0;
out:
    kg_store_close(copy);
    kg_store_close(configured);
    kg_config_free(cfg);
    if (status != 0 && backup) {
        /* A half-written backup must not pass for a whole one; the file did
         * not exist before (checked above), so whatever is there is ours. */
        kg_backup_remove(file);
    }
    return status;
}
