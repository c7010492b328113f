/* The stored-index marker of a Raft replica (raft/marker.c). */
#ifndef RAFT_MARKER_H
#define RAFT_MARKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Why: libraft starts from whatever its data directory holds. A
 * directory emptied or missing log files (a wrong `rm`, a restore of the
 * wrong backup, a volume that was not mounted) looks like a new replica:
 * it bootstraps or starts short, and entries it had acknowledged are
 * gone without a word. BookKeeper guards its journals with "cookies" for
 * the same reason. The marker is a small file beside the directory,
 * DIR.marker, naming the group, the node and an index the replica had
 * committed and stored; a replica whose directory no longer reaches that
 * index refuses to start. It is rewritten about once a second while the
 * index grows (temporary file and rename, not synced: a marker that lags
 * after a power cut only checks less), so the loss of the last second of
 * a log can go unseen; nothing older can.
 *
 * Only committed, stored entries are marked: a follower may truncate
 * stored entries that were never committed, and that must not look like
 * a loss.
 */
struct raft_marker {
	uint64_t group; /* raft group id */
	uint64_t node;  /* this replica's node id */
	uint64_t index; /* committed and stored on this replica */
};

/* DIR.marker for dir (trailing '/' ignored) into buf; false when it does
 * not fit. */
bool raft_marker_path(const char *dir, char *buf, size_t size);

/* Read path: 0 with *m; STRATA_ENOENT when there is none; STRATA_ECORRUPT
 * when it does not parse or its checksum fails. */
int raft_marker_read(const char *path, struct raft_marker *m);

/* Replace path with m (path.tmp, then rename). 0, or the errno. */
int raft_marker_write(const char *path, const struct raft_marker *m);

/*
 * Before a replica starts on dir: refuse (STRATA_ECORRUPT, errmsg of
 * STRATA_ERRMSG_SIZE naming the directory and what to do) when dir holds
 * log or snapshot files but no metadata1/metadata2 (its term and vote are
 * lost), holds nothing while a marker of this group and node says it
 * had stored entries; STRATA_ECONFIG when it holds a log while the
 * marker names another group or node (a mistyped node.id). Otherwise 0 and
 * *marked = the marker's index (0: no marker, or one of another group or node
 * beside an empty directory, which is ignored with a warning).
 */
int raft_marker_check(const char *dir, uint64_t group, uint64_t node,
                      uint64_t *marked, char *errmsg);

#endif /* RAFT_MARKER_H */
