/*
 * kg_fuzz_replay.c - run a fuzz target over files, without libFuzzer.
 *
 *   kg_<target>_replay PATH...
 *
 * Every PATH is a file or a directory whose files (not subdirectories, not
 * dot files) are taken in name order. Each file is run in a forked child, so
 * one crashing input cannot hide the others: a child killed by a signal (a
 * sanitizer report, abort, SIGSEGV, the timeout below) or exiting non-zero
 * counts as a failed file and is named. Prints
 *   kgtest-summary: fuzz-<target> <files_ok> <files_failed>
 * and exits non-zero if any file failed. A PATH that cannot be read counts
 * as one failed file, so a mistyped corpus directory is not a silent pass.
 *
 * This lets a gcc-only CI replay the committed corpus, crashers included
 * (p11-kit fuzz/main.c does the same).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kg_fuzz.h"

#ifndef KG_FUZZ_TARGET
#error "KG_FUZZ_TARGET must name the target, e.g. -DKG_FUZZ_TARGET=\"ttlv\""
#endif

/* Seconds one input may take; libFuzzer runs use -timeout=10. */
#define KG_FUZZ_REPLAY_TIMEOUT 60u

struct kg_fuzz_tally {
    unsigned ok;
    unsigned failed;
};

/* Read all of `path` into a buffer of exactly its size, so that the
 * sanitizers catch a read one byte past the input. Exits on error. */
static uint8_t *kg_fuzz_read_file(const char *path, size_t *out_size)
{
    struct stat st;
    uint8_t *buf;
    size_t done = 0;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 0) {
        fprintf(stderr, "%s: cannot read: %s\n", path, strerror(errno));
        exit(3);
    }
    /* malloc(0) may return NULL; keep a valid pointer for empty inputs. */
    buf = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
    if (buf == NULL) {
        fprintf(stderr, "%s: out of memory\n", path);
        exit(3);
    }
    while (done < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + done, (size_t)st.st_size - done);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            fprintf(stderr, "%s: short read\n", path);
            exit(3);
        }
        done += (size_t)n;
    }
    close(fd);
    *out_size = done;
    return buf;
}

/* Run the target on one file in a child process; count the outcome. */
static void kg_fuzz_run_file(const char *path, struct kg_fuzz_tally *tally)
{
    pid_t pid;
    int status;

    fflush(NULL); /* nothing buffered may be written twice */
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "FAIL %s: fork: %s\n", path, strerror(errno));
        tally->failed++;
        return;
    }
    if (pid == 0) {
        size_t size = 0;
        uint8_t *data;

        alarm(KG_FUZZ_REPLAY_TIMEOUT);
        data = kg_fuzz_read_file(path, &size);
        LLVMFuzzerTestOneInput(data, size);
        free(data);
        /* exit, not _exit: atexit handlers and LeakSanitizer must run. */
        exit(0);
    }
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            fprintf(stderr, "FAIL %s: waitpid: %s\n", path, strerror(errno));
            tally->failed++;
            return;
        }
    }
    if (WIFSIGNALED(status)) {
        fprintf(stderr, "FAIL %s: killed by signal %d (%s)\n", path, WTERMSIG(status), strsignal(WTERMSIG(status)));
        tally->failed++;
    } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
        fprintf(stderr, "FAIL %s: exit status %d\n", path, WEXITSTATUS(status));
        tally->failed++;
    } else {
        tally->ok++;
    }
}

static int kg_fuzz_visible(const struct dirent *entry)
{
    return entry->d_name[0] != '.';
}

static void kg_fuzz_run_path(const char *path, struct kg_fuzz_tally *tally)
{
    struct dirent **names = NULL;
    struct stat st;
    int n;

    if (stat(path, &st) != 0) {
        fprintf(stderr, "FAIL %s: %s\n", path, strerror(errno));
        tally->failed++;
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        kg_fuzz_run_file(path, tally);
        return;
    }
    n = scandir(path, &names, kg_fuzz_visible, alphasort);
    if (n < 0) {
        fprintf(stderr, "FAIL %s: %s\n", path, strerror(errno));
        tally->failed++;
        return;
    }
    if (n == 0) {
        fprintf(stderr, "warning: %s holds no inputs\n", path);
    }
    for (int i = 0; i < n; i++) {
        size_t len = strlen(path) + 1 + strlen(names[i]->d_name) + 1;
        char *file = malloc(len);

        if (file == NULL) {
            fprintf(stderr, "FAIL %s: out of memory\n", path);
            tally->failed++;
        } else {
            snprintf(file, len, "%s/%s", path, names[i]->d_name);
            if (stat(file, &st) == 0 && S_ISDIR(st.st_mode)) {
                /* libFuzzer corpora are flat; a subdirectory is not an input. */
            } else {
                kg_fuzz_run_file(file, tally);
            }
            free(file);
        }
        free(names[i]);
    }
    free(names);
}

int main(int argc, char **argv)
{
    struct kg_fuzz_tally tally = { 0, 0 };

    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE-OR-DIRECTORY...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        kg_fuzz_run_path(argv[i], &tally);
    }
    printf("kgtest-summary: fuzz-%s %u %u\n", KG_FUZZ_TARGET, tally.ok, tally.failed);
    return tally.failed == 0 ? 0 : 1;
}
