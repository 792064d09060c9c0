/*
 * kg_commit.h - group commit: many workers' changes share one durable
 * SQLite commit, and each still waits for the commit that holds its change.
 *
 * One writer connection is shared. A change is applied under a mutex, inside
 * the group's open transaction, under a savepoint of its own (so a failing
 * change is undone alone). Then its worker waits for durability: the last
 * worker to apply while nobody else is waiting to apply becomes the leader
 * and commits the whole group (one fsync, synchronous=FULL) while the others
 * wait. A group is therefore "everything applied while the previous commit
 * was on disk", which grows with load and is one change when idle.
 *
 * Durability rule (DESIGN.md): kg_change_end returns success only after the
 * commit that holds the change is on disk. If that commit fails, every
 * change of the group gets the error.
 */
#ifndef KG_COMMIT_H
#define KG_COMMIT_H

#include "kg_result.h"
#include "kg_store.h"

struct kg_committer;

/* Open the writer connection on `path`. Caller owns *out. */
kg_result kg_committer_open(const char *path, struct kg_committer **out) KG_WARN_UNUSED;
void kg_committer_close(struct kg_committer *c);

/*
 * Start a change of the object `uid` (NULL for a change that only makes new
 * objects). On success *store is the writer connection, to be used for this
 * change's reads and writes only until kg_change_end, which must follow on
 * the same thread whatever happens (also after a failed begin: no).
 * On a PostgreSQL store the object's row is locked first (kg_store_lock_object),
 * so the change's reads and writes are one step for every gateway sharing the
 * database; SQLite's single writer already makes them so. On failure
 * nothing is held and kg_change_end must not be called.
 */
kg_result kg_change_begin(struct kg_committer *c, const char *uid, struct kg_store **store) KG_WARN_UNUSED;

/*
 * Finish a change: `rc` says whether applying it worked. On failure its
 * savepoint is rolled back and `rc` is returned. On success, returns once
 * the change is durable, or the commit's error.
 */
kg_result kg_change_end(struct kg_committer *c, kg_result rc) KG_WARN_UNUSED;

/*
 * A batch with Undo (KMIP Batch Error Continuation Option Undo, 1.4 section
 * 6.7): every change the calling thread makes until kg_change_batch_end is
 * applied inside one savepoint of the batch, and either all of them become
 * durable together or none does. Between the two calls, kg_change_begin and
 * kg_change_end on this thread nest a savepoint each inside the batch's and
 * return without waiting for a commit: nothing of the batch may be answered
 * before kg_change_batch_end. *store is the writer connection: the batch's
 * reads must go through it to see its own changes. Other threads' changes
 * wait until the batch ends. On failure nothing is held.
 */
kg_result kg_change_batch_begin(struct kg_committer *c, struct kg_store **store) KG_WARN_UNUSED;
/*
 * End the batch: `rc` failed rolls back every change of the batch and
 * returns `rc`; otherwise returns once the batch is durable, or the
 * commit's error (then none of it happened).
 */
kg_result kg_change_batch_end(struct kg_committer *c, kg_result rc) KG_WARN_UNUSED;

/* Commits and changes so far, to measure the grouping. */
struct kg_commit_stats {
    uint64_t commits;
    uint64_t changes;
};
void kg_commit_get_stats(struct kg_committer *c, struct kg_commit_stats *out);

#endif
