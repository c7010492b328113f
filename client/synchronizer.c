/* State synchronizer over a revisioned log: fetch, conditional and
 * unconditional updates, compaction. */
#include "client/synchronizer.h"

#include <stdio.h>
#include <string.h>

#include "strata/error.h"

/* Conditional attempts per update unless set otherwise. */
#define SYNC_DEFAULT_ATTEMPTS 1000

void sync_init(struct synchronizer *s, const struct rlog_ops *ops, void *log,
               const struct sync_state_ops *sops, void *state)
{
	memset(s, 0, sizeof(*s));
	s->ops = ops;
	s->log = log;
	s->sops = sops;
	s->state = state;
	s->max_attempts = SYNC_DEFAULT_ATTEMPTS;
}

struct fold_ctx {
	struct synchronizer *s;
	char *errmsg;
};

/* Fold one record read from the log; note where full states start. */
static int fold_one(void *arg, const uint8_t *rec, size_t len, uint64_t offset,
                    uint64_t next)
{
	struct fold_ctx *f = arg;
	if (f->s->sops->is_full != NULL && f->s->sops->is_full(rec, len)) {
		f->s->full_revision = offset;
	}
	int rc = f->s->sops->apply(f->s->state, rec, len, f->errmsg);
	if (rc != 0) {
		return rc;
	}
	f->s->revision = next;
	f->s->records++;
	return 0;
}

/* Read from the current revision (or from the log's start when the state
 * is not loaded). */
static int fetch_once(struct synchronizer *s, char *errmsg)
{
	struct fold_ctx f = {s, errmsg};
	uint64_t end = 0;
	if (!s->loaded) {
		uint64_t start, e;
		int rc = s->ops->bounds(s->log, &start, &e, errmsg);
		if (rc != 0) {
			return rc;
		}
		s->sops->reset(s->state);
		s->revision = start;
		s->full_revision = start;
	}
	int rc = s->ops->read(s->log, s->revision, fold_one, &f, &end, errmsg);
	if (rc == 0) {
		s->loaded = true;
		s->revision = end;
		return 0;
	}
	/* The state may have folded part of the records: start over next
	 * time unless the log simply moved its start (then retry now). */
	s->loaded = false;
	return rc;
}

int sync_fetch(struct synchronizer *s, char *errmsg)
{
	int rc = fetch_once(s, errmsg);
	if (rc == STRATA_ETRUNCATED) {
		/* Compacted past our revision: rebuild from the full state at
		 * the new start. */
		rc = fetch_once(s, errmsg);
	}
	if (rc != 0) {
		s->sops->reset(s->state);
		s->loaded = false;
	}
	return rc;
}

int sync_update(struct synchronizer *s, sync_gen_fn gen, void *arg,
                bool *written, char *errmsg)
{
	struct buf rec;
	int rc = 0;
	buf_init(&rec, 0);
	if (written != NULL) {
		*written = false;
	}
	for (unsigned attempt = 0;; attempt++) {
		if (attempt >= s->max_attempts) {
			if (errmsg != NULL) {
				snprintf(errmsg, STRATA_ERRMSG_SIZE,
				         "state update lost the race %u times "
				         "in "
				         "a row (revision %llu); the group is "
				         "very busy: retry later",
				         attempt,
				         (unsigned long long)s->revision);
			}
			rc = STRATA_EBUSY;
			break;
		}
		if (attempt > 0 || !s->loaded) {
			if ((rc = sync_fetch(s, errmsg)) != 0) {
				break;
			}
		}
		buf_reset(&rec);
		if ((rc = gen(arg, s->state, &rec, errmsg)) != 0) {
			break;
		}
		if (rec.len == 0) {
			break;
		}
		uint64_t new_rev;
		rc = s->ops->append_cond(s->log, s->revision, rec.data, rec.len,
		                         &new_rev, errmsg);
		if (rc == STRATA_ECONFLICT) {
			s->conflicts++;
			continue;
		}
		if (rc != 0) {
			break;
		}
		/* Our record sits right at our revision: fold it. */
		rc = s->sops->apply(s->state, rec.data, rec.len, errmsg);
		if (rc != 0) {
			s->sops->reset(s->state);
			s->loaded = false;
			break;
		}
		s->last_write_at = s->revision;
		s->revision = new_rev;
		s->records++;
		if (written != NULL) {
			*written = true;
		}
		break;
	}
	buf_close(&rec);
	return rc;
}

int sync_update_any(struct synchronizer *s, const void *rec, size_t len,
                    char *errmsg)
{
	uint64_t off;
	int rc = s->ops->append(s->log, rec, len, &off, errmsg);
	if (rc == 0) {
		s->last_write_at = off;
		rc = sync_fetch(s, errmsg);
	}
	return rc;
}

/* Generator of sync_compact: the full state. */
static int gen_full(void *arg, const void *state, struct buf *out, char *errmsg)
{
	struct synchronizer *s = arg;
	(void)errmsg;
	return s->sops->encode(state, out);
}

int sync_compact(struct synchronizer *s, char *errmsg)
{
	bool written;
	int rc = sync_update(s, gen_full, s, &written, errmsg);
	if (rc != 0 || !written) {
		return rc;
	}
	/* The full record starts where the conditional append was made. */
	s->full_revision = s->last_write_at;
	return s->ops->truncate(s->log, s->full_revision, errmsg);
}

uint64_t sync_bytes_since_compaction(const struct synchronizer *s)
{
	return s->revision - s->full_revision;
}
