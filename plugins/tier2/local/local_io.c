/* Tier-2 "local" plugin: write, read, stat, truncate and concat. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "plugins/tier2/local/local.h"
#include "plugins/tier2/local/local_format.h"
#include "strata/plugin.h"

#define BATCH_RECORDS 64u /* records per pwritev */

/* A synced write of more than this starts the writeback of each piece it
 * has copied while it copies the next (sync_file_range), so the disk gets
 * it in pieces between the Raft log's own synchronous writes instead of
 * all at once at the fdatasync, when the log's writes queue behind it
 * (RocksDB's bytes_per_sync, PostgreSQL's backend_flush_after). Measured
 * with 4 MB tier-2 flushes beside the log at 1 KB 8x32: p95 send-to-ack
 * 3.28-3.93 -> 3.18-3.57 ms, lower in 7 of 8 interleaved pairs, events/s
 * +3 % (docs/benchmarks.md, session 24). */
#define WRITEBACK_STEP (1u << 20)

/* pwritev all of iov[0..n) at pos, retrying short writes. errno on
 * failure. iov is consumed. */
static int pwritev_full(int fd, struct iovec *iov, int n, uint64_t pos)
{
	while (n > 0) {
		ssize_t r = pwritev(fd, iov, n, (off_t)pos);
		if (r < 0) {
			if (errno == EINTR) {
				continue;
			}
			return errno;
		}
		if (r == 0) {
			return EIO;
		}
		pos += (uint64_t)r;
		size_t left = (size_t)r;
		while (n > 0 && left >= iov->iov_len) {
			left -= iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + left;
			iov->iov_len -= left;
		}
	}
	return 0;
}

/* Append len bytes of buf as records of the write that began at logical
 * offset write_start, at the end of c (c->end_pos, c->length), then
 * fdatasync when sync and fsync are on. On failure cut the file back (or
 * mark c stale when even that fails). errno on failure. */
static int append_records(struct local *l, struct chunk *c, const void *buf,
                          size_t len, uint64_t write_start, bool sync)
{
	uint8_t hdrs[BATCH_RECORDS][LOCAL_RECORD_HDR];
	struct iovec iov[2 * BATCH_RECORDS];
	const uint8_t *p = buf;
	uint64_t off = c->length;
	uint64_t pos = c->end_pos;
	size_t left = len;
	/* fdatasync'ed at the end, so written in WRITEBACK_STEP pieces */
	bool durable = sync && l->fsync;
	int e = 0;
	while (left > 0) {
		int n = 0;
		uint64_t bpos = pos;
		size_t piece = 0;
		while (left > 0 && n < (int)BATCH_RECORDS) {
			size_t m = left < LOCAL_RECORD_MAX ? left
			                                   : LOCAL_RECORD_MAX;
			if (durable && n > 0 && piece + m > WRITEBACK_STEP) {
				break;
			}
			piece += m;
			struct local_record r = {
			        .length = (uint32_t)m,
			        .offset = off,
			        .write_start = write_start,
			        .flags = 0,
			        .payload_crc = local_crc32c(0, p, m),
			};
			local_record_encode(&r, hdrs[n]);
			iov[2 * n].iov_base = hdrs[n];
			iov[2 * n].iov_len = LOCAL_RECORD_HDR;
			iov[2 * n + 1].iov_base = (void *)p;
			iov[2 * n + 1].iov_len = m;
			p += m;
			off += m;
			left -= m;
			pos += LOCAL_RECORD_HDR + m;
			n++;
		}
		e = pwritev_full(c->fd, iov, 2 * n, bpos);
		if (e != 0) {
			goto err_cut;
		}
		if (durable && left > 0) {
			/* Only starts the writeback: errors, if any, are the
			 * fdatasync's to report. */
			(void)sync_file_range(c->fd, (off_t)bpos,
			                      (off_t)(pos - bpos),
			                      SYNC_FILE_RANGE_WRITE);
		}
	}
	if (durable && fdatasync(c->fd) != 0) {
		e = errno;
		goto err_cut;
	}
	if (durable && l->drop_cache) {
		/* Durable now, so the pages are clean: dropping them costs
		 * nothing, and the page cache is not filled with data read
		 * back rarely (on a VM whose memory the host backs lazily,
		 * copying into ever new page-cache pages took 11.5 % of the
		 * machine at 1 KB 8x32: docs/benchmarks.md, session 14). A
		 * failure changes nothing but the cache. */
		(void)posix_fadvise(c->fd, (off_t)c->end_pos,
		                    (off_t)(pos - c->end_pos),
		                    POSIX_FADV_DONTNEED);
	}
	/* Index the new records (hint only, cannot fail). */
	off = c->length;
	pos = c->end_pos;
	for (size_t done = 0; done < len;) {
		size_t m = len - done < LOCAL_RECORD_MAX ? len - done
		                                         : LOCAL_RECORD_MAX;
		local_index_add(l, c, off, pos);
		off += m;
		pos += LOCAL_RECORD_HDR + m;
		done += m;
	}
	c->length = off;
	c->end_pos = pos;
	local_chunk_touch(c);
	return 0;

err_cut:
	if (ftruncate(c->fd, (off_t)c->end_pos) != 0 ||
	    (l->fsync && fsync(c->fd) != 0)) {
		local_log(l, STRATA_LOG_ERROR,
		          "chunk %s: could not cut a failed write back to byte "
		          "%llu: %s; the next access reports a torn tail",
		          c->name, (unsigned long long)c->end_pos,
		          strerror(errno));
		c->stale = true;
	} else {
		local_chunk_touch(c);
	}
	return e;
}

int local_write(void *state, const char *name, uint64_t offset, const void *buf,
                size_t len, char *errmsg)
{
	struct local *l = state;
	struct chunk *c;
	int rc = local_check_name("write", name, errmsg);
	if (rc != 0) {
		return rc;
	}
	rc = local_chunk_get(l, "write", name, &c, errmsg);
	if (rc != 0) {
		return rc;
	}
	if (c->state != CHUNK_OK) {
		rc = local_damaged(c, errmsg, "write");
		goto out;
	}
	if (offset != c->length) {
		local_errf(errmsg,
		           "write chunk %s at offset %llu: the chunk is %llu "
		           "bytes "
		           "long; appends go at its length",
		           name, (unsigned long long)offset,
		           (unsigned long long)c->length);
		rc = STRATA_EBADOFFSET;
		goto out;
	}
	if (len == 0) {
		goto out;
	}
	if (len > UINT64_MAX - offset) {
		local_errf(errmsg, "write chunk %s: %zu bytes at %llu overflow",
		           name, len, (unsigned long long)offset);
		rc = STRATA_ERANGE;
		goto out;
	}
	int e = append_records(l, c, buf, len, offset, true);
	if (e != 0) {
		rc = local_sys_fail(l, errmsg, e, "write", name, "append to");
		goto out;
	}
	local_count(l, "bytes_written", len);
out:
	local_chunk_put(l, c);
	return rc;
}

int local_read(void *state, const char *name, uint64_t offset, void *buf,
               size_t len, size_t *nread, char *errmsg)
{
	struct local *l = state;
	struct chunk *c;
	struct window w = {0};
	*nread = 0;
	int rc = local_check_name("read", name, errmsg);
	if (rc != 0) {
		return rc;
	}
	rc = local_chunk_get(l, "read", name, &c, errmsg);
	if (rc != 0) {
		return rc;
	}
	if (c->state != CHUNK_OK) {
		rc = local_damaged(c, errmsg, "read");
		goto out;
	}
	if (offset > c->length) {
		local_errf(
		        errmsg,
		        "read chunk %s at offset %llu: beyond its length %llu",
		        name, (unsigned long long)offset,
		        (unsigned long long)c->length);
		rc = STRATA_ERANGE;
		goto out;
	}
	uint64_t end = len < c->length - offset ? offset + len : c->length;
	if (end == offset) {
		goto out;
	}
	w.buf = l->host->malloc(LOCAL_WINDOW);
	if (w.buf == NULL) {
		rc = local_nomem(errmsg, "read", name);
		goto out;
	}
	struct index_entry ie = local_index_find(c, offset);
	uint64_t pos = ie.pos;
	uint64_t off = ie.off;
	uint8_t *dst = buf;
	while (off < end) {
		const uint8_t *h;
		size_t avail;
		struct local_record r;
		int e = local_win_get(c->fd, &w, pos, LOCAL_RECORD_HDR, &h,
		                      &avail);
		if (e != 0) {
			rc = local_sys_fail(l, errmsg, e, "read", name, "read");
			goto err_wipe;
		}
		if (avail < LOCAL_RECORD_HDR || !local_record_decode(h, &r) ||
		    r.offset != off ||
		    pos + LOCAL_RECORD_HDR + r.length > c->end_pos) {
			local_errf(
			        errmsg,
			        "read chunk %s: corrupt record header at byte "
			        "position %llu (offset %llu); restore the "
			        "chunk",
			        name, (unsigned long long)pos,
			        (unsigned long long)off);
			rc = STRATA_ECORRUPT;
			goto err_wipe;
		}
		uint64_t rend = off + r.length;
		uint64_t ppos = pos + LOCAL_RECORD_HDR;
		if (rend <= offset) {
			pos = ppos + r.length;
			off = rend;
			continue;
		}
		uint32_t crc = 0;
		if (off >= offset && rend <= end) {
			/* Whole record wanted: copy it from the window when
			 * it is there, else read it in place. */
			uint8_t *d = dst + (off - offset);
			ssize_t got = (ssize_t)r.length;
			if (ppos >= w.pos && ppos + r.length <= w.pos + w.len) {
				memcpy(d, w.buf + (ppos - w.pos), r.length);
			} else {
				got = local_pread_full(c->fd, d, r.length,
				                       ppos);
			}
			if (got < 0) {
				rc = local_sys_fail(l, errmsg, errno, "read",
				                    name, "read");
				goto err_wipe;
			}
			if ((size_t)got < r.length) {
				e = ENODATA;
			} else {
				crc = local_crc32c(0, d, r.length);
			}
		} else {
			/* Part of it wanted: stream it all for the CRC. */
			uint64_t from = offset > off ? offset : off;
			uint64_t to = end < rend ? end : rend;
			uint64_t q = ppos;
			uint64_t qo = off;
			while (e == 0 && qo < rend) {
				size_t m = rend - qo < LOCAL_WINDOW
				                   ? (size_t)(rend - qo)
				                   : LOCAL_WINDOW;
				const uint8_t *s;
				e = local_win_get(c->fd, &w, q, m, &s, &avail);
				if (e == 0 && avail < m) {
					e = ENODATA;
				}
				if (e != 0) {
					break;
				}
				crc = local_crc32c(crc, s, m);
				uint64_t a = qo > from ? qo : from;
				uint64_t b = qo + m < to ? qo + m : to;
				if (a < b) {
					memcpy(dst + (a - offset), s + (a - qo),
					       (size_t)(b - a));
				}
				q += m;
				qo += m;
			}
		}
		if (e != 0 && e != ENODATA) {
			rc = local_sys_fail(l, errmsg, e, "read", name, "read");
			goto err_wipe;
		}
		if (e == ENODATA || crc != r.payload_crc) {
			local_errf(
			        errmsg,
			        "read chunk %s: payload checksum mismatch in "
			        "the "
			        "record at byte position %llu (offset %llu); "
			        "restore the chunk",
			        name, (unsigned long long)pos,
			        (unsigned long long)off);
			local_count(l, "corrupt_reads", 1);
			rc = STRATA_ECORRUPT;
			goto err_wipe;
		}
		pos = ppos + r.length;
		off = rend;
	}
	*nread = (size_t)(end - offset);
	local_count(l, "bytes_read", *nread);
	goto out;

err_wipe:
	/* Nothing unverified may look like data. */
	memset(buf, 0, (size_t)(end - offset));
out:
	l->host->free(w.buf);
	local_chunk_put(l, c);
	return rc;
}

int local_stat(void *state, const char *name,
               struct strata_tier2_chunk_info *info, char *errmsg)
{
	struct local *l = state;
	struct chunk *c;
	int rc = local_check_name("stat", name, errmsg);
	if (rc != 0) {
		return rc;
	}
	rc = local_chunk_get(l, "stat", name, &c, errmsg);
	if (rc != 0) {
		return rc;
	}
	/* A damaged chunk still reports its last good length in info (for
	 * recovery: truncate to it), along with ETORN/ECORRUPT. */
	info->length = c->length;
	info->mtime_ns =
	        (int64_t)c->mtime.tv_sec * 1000000000 + c->mtime.tv_nsec;
	if (c->state != CHUNK_OK) {
		rc = local_damaged(c, errmsg, "stat");
	}
	local_chunk_put(l, c);
	return rc;
}

/* Cut c at logical length (<= c->length, c->state OK): at a record
 * boundary with one ftruncate, inside a record by cutting what follows
 * it, then rewriting its header for the shorter payload (see docs for the
 * crash analysis). Error code with errmsg. */
static int cut(struct local *l, struct chunk *c, uint64_t length, char *errmsg)
{
	const char *op = "truncate";
	struct window w = {0};
	int rc = 0;
	int e = 0;
	w.buf = l->host->malloc(LOCAL_WINDOW);
	if (w.buf == NULL) {
		return local_nomem(errmsg, op, c->name);
	}
	struct index_entry ie = local_index_find(c, length);
	uint64_t pos = ie.pos;
	uint64_t off = ie.off;
	struct local_record r;
	while (off < length) {
		const uint8_t *h;
		size_t avail;
		e = local_win_get(c->fd, &w, pos, LOCAL_RECORD_HDR, &h, &avail);
		if (e != 0) {
			goto err_sys;
		}
		if (avail < LOCAL_RECORD_HDR || !local_record_decode(h, &r) ||
		    r.offset != off) {
			local_errf(
			        errmsg,
			        "truncate chunk %s: corrupt record header at "
			        "byte position %llu; restore the chunk",
			        c->name, (unsigned long long)pos);
			rc = STRATA_ECORRUPT;
			goto out;
		}
		if (off + r.length > length) {
			break;
		}
		pos += LOCAL_RECORD_HDR + r.length;
		off += r.length;
	}
	if (off == length) {
		if (ftruncate(c->fd, (off_t)pos) != 0 ||
		    (l->fsync && fsync(c->fd) != 0)) {
			e = errno;
			goto err_sys;
		}
	} else {
		/* Inside the record at pos: check all of it, CRC the kept
		 * part, drop what follows, then shorten it. */
		uint32_t keep = (uint32_t)(length - off);
		uint32_t crc_keep = 0;
		e = local_crc_range(c->fd, &w, pos + LOCAL_RECORD_HDR, keep,
		                    &crc_keep);
		uint32_t crc_all = crc_keep;
		if (e == 0) {
			e = local_crc_range(c->fd, &w,
			                    pos + LOCAL_RECORD_HDR + keep,
			                    r.length - keep, &crc_all);
		}
		if (e == ENODATA || (e == 0 && crc_all != r.payload_crc)) {
			local_errf(
			        errmsg,
			        "truncate chunk %s: payload checksum mismatch "
			        "in "
			        "the record at byte position %llu; restore the "
			        "chunk",
			        c->name, (unsigned long long)pos);
			rc = STRATA_ECORRUPT;
			goto out;
		}
		if (e != 0) {
			goto err_sys;
		}
		uint64_t rec_end = pos + LOCAL_RECORD_HDR + r.length;
		uint8_t hdr[LOCAL_RECORD_HDR];
		r.length = keep;
		r.payload_crc = crc_keep;
		local_record_encode(&r, hdr);
		/* 1: drop later records (a crash leaves a sound file). */
		if (c->end_pos > rec_end &&
		    (ftruncate(c->fd, (off_t)rec_end) != 0 ||
		     (l->fsync && fsync(c->fd) != 0))) {
			e = errno;
			goto err_sys;
		}
		/* 2: shorter header (a crash leaves a torn tail at length). */
		ssize_t wr = pwrite(c->fd, hdr, sizeof(hdr), (off_t)pos);
		if (wr != (ssize_t)sizeof(hdr)) {
			e = wr < 0 ? errno : EIO;
			goto err_sys;
		}
		/* 3: drop the rest of the old payload. */
		if (ftruncate(c->fd, (off_t)(pos + LOCAL_RECORD_HDR + keep)) !=
		            0 ||
		    (l->fsync && fsync(c->fd) != 0)) {
			e = errno;
			goto err_sys;
		}
		pos += LOCAL_RECORD_HDR + keep;
	}
	c->length = length;
	c->end_pos = pos;
	local_index_trim(c, length);
	local_chunk_touch(c);
	goto out;

err_sys:
	c->stale = true;
	rc = local_sys_fail(l, errmsg, e, op, c->name, "truncate");
out:
	l->host->free(w.buf);
	return rc;
}

int local_truncate(void *state, const char *name, uint64_t length, char *errmsg)
{
	struct local *l = state;
	struct chunk *c;
	int rc = local_check_name("truncate", name, errmsg);
	if (rc != 0) {
		return rc;
	}
	rc = local_chunk_get(l, "truncate", name, &c, errmsg);
	if (rc != 0) {
		return rc;
	}
	if (c->state != CHUNK_OK) {
		if (length > c->length) {
			rc = local_damaged(c, errmsg, "truncate");
			goto out;
		}
		/* Repair: cut the damage off, then truncate a sound file. */
		uint64_t cut_bytes = (uint64_t)c->size - c->end_pos;
		if (ftruncate(c->fd, (off_t)c->end_pos) != 0 ||
		    (l->fsync && fsync(c->fd) != 0)) {
			c->stale = true;
			rc = local_sys_fail(l, errmsg, errno, "truncate", name,
			                    "cut the damaged tail of");
			goto out;
		}
		local_log(
		        l, STRATA_LOG_WARN,
		        "chunk %s: repaired: cut %llu damaged bytes from byte "
		        "position %llu; length now %llu",
		        name, (unsigned long long)cut_bytes,
		        (unsigned long long)c->end_pos,
		        (unsigned long long)c->length);
		local_count(l, "repairs", 1);
		c->state = CHUNK_OK;
		local_chunk_touch(c);
	} else if (length > c->length) {
		local_errf(errmsg,
		           "truncate chunk %s to %llu bytes: it is only %llu "
		           "bytes "
		           "long",
		           name, (unsigned long long)length,
		           (unsigned long long)c->length);
		rc = STRATA_ERANGE;
		goto out;
	}
	if (length < c->length) {
		rc = cut(l, c, length, errmsg);
	}
out:
	local_chunk_put(l, c);
	return rc;
}

/* Append every record of source s to target t, coalescing payloads into
 * records of up to LOCAL_RECORD_MAX bytes (buf has that many) and checking
 * each source CRC on the way. Each new record counts as a write of its
 * own, so opening the target later checks at most one record's payload
 * (see local_scan). No fdatasync. Error code with errmsg. */
static int copy_records(struct local *l, struct chunk *t, struct chunk *s,
                        uint8_t *buf, struct window *w, char *errmsg)
{
	uint64_t pos = 0;
	uint64_t off = 0;
	size_t fill = 0;
	int e;
	while (pos < s->end_pos) {
		const uint8_t *h;
		size_t avail;
		struct local_record r;
		e = local_win_get(s->fd, w, pos, LOCAL_RECORD_HDR, &h, &avail);
		if (e != 0) {
			return local_sys_fail(l, errmsg, e, "concat", s->name,
			                      "read");
		}
		if (avail < LOCAL_RECORD_HDR || !local_record_decode(h, &r) ||
		    r.offset != off ||
		    pos + LOCAL_RECORD_HDR + r.length > s->end_pos) {
			local_errf(
			        errmsg,
			        "concat source chunk %s: corrupt record header "
			        "at byte position %llu; restore the chunk",
			        s->name, (unsigned long long)pos);
			return STRATA_ECORRUPT;
		}
		if (fill + r.length > LOCAL_RECORD_MAX) {
			e = append_records(l, t, buf, fill, t->length, false);
			if (e != 0) {
				return local_sys_fail(l, errmsg, e, "concat",
				                      t->name, "append to");
			}
			fill = 0;
		}
		ssize_t got = local_pread_full(s->fd, buf + fill, r.length,
		                               pos + LOCAL_RECORD_HDR);
		if (got < 0) {
			return local_sys_fail(l, errmsg, errno, "concat",
			                      s->name, "read");
		}
		if ((size_t)got != r.length ||
		    local_crc32c(0, buf + fill, r.length) != r.payload_crc) {
			local_errf(
			        errmsg,
			        "concat source chunk %s: payload checksum "
			        "mismatch in the record at byte position %llu; "
			        "restore the chunk",
			        s->name, (unsigned long long)pos);
			return STRATA_ECORRUPT;
		}
		fill += r.length;
		pos += LOCAL_RECORD_HDR + r.length;
		off += r.length;
	}
	if (fill > 0) {
		e = append_records(l, t, buf, fill, t->length, false);
		if (e != 0) {
			return local_sys_fail(l, errmsg, e, "concat", t->name,
			                      "append to");
		}
	}
	return 0;
}

/* The hidden name a concat source is moved to before it is deleted:
 * "<dir>/.strata-d.<base>" (list skips it, names cannot clash with it). */
static void trash_name(const char *name, char *out, size_t size)
{
	const char *slash = strrchr(name, '/');
	int dlen = slash != NULL ? (int)(slash - name + 1) : 0;
	snprintf(out, size, "%.*s" LOCAL_RESERVED "d.%s", dlen, name,
	         name + dlen);
}

int local_concat(void *state, const char *target, const char *const *sources,
                 size_t n, char *errmsg)
{
	struct local *l = state;
	struct chunk *t;
	struct chunk *s;
	struct window w = {0};
	uint8_t *buf = NULL;
	char trash[STRATA_TIER2_NAME_MAX + 32];
	char back[STRATA_TIER2_NAME_MAX + 32];
	size_t moved = 0;
	int rc = local_check_name("concat into", target, errmsg);
	if (rc != 0) {
		return rc;
	}
	for (size_t i = 0; i < n; i++) {
		rc = local_check_name("concat from", sources[i], errmsg);
		if (rc != 0) {
			return rc;
		}
		for (size_t j = 0; j <= i; j++) {
			const char *other = j < i ? sources[j] : target;
			if (strcmp(sources[i], other) == 0) {
				local_errf(errmsg,
				           "concat into chunk %s: chunk %s is "
				           "named "
				           "twice",
				           target, sources[i]);
				return STRATA_EINVAL;
			}
		}
	}
	rc = local_chunk_get(l, "concat into", target, &t, errmsg);
	if (rc != 0) {
		return rc;
	}
	if (t->state != CHUNK_OK) {
		rc = local_damaged(t, errmsg, "concat into");
		goto out;
	}
	/* Check every source first: nothing changes if one is unusable. */
	for (size_t i = 0; i < n; i++) {
		rc = local_chunk_get(l, "concat from", sources[i], &s, errmsg);
		if (rc != 0) {
			goto out;
		}
		if (s->state != CHUNK_OK) {
			rc = local_damaged(s, errmsg, "concat from");
		}
		local_chunk_put(l, s);
		if (rc != 0) {
			goto out;
		}
	}
	uint64_t old_len = t->length;
	uint64_t old_end = t->end_pos;
	buf = l->host->malloc(LOCAL_RECORD_MAX);
	w.buf = l->host->malloc(LOCAL_WINDOW);
	if (buf == NULL || w.buf == NULL) {
		rc = local_nomem(errmsg, "concat into", target);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		rc = local_chunk_get(l, "concat from", sources[i], &s, errmsg);
		if (rc != 0) {
			goto err_rollback;
		}
		w.len = 0;
		rc = copy_records(l, t, s, buf, &w, errmsg);
		local_chunk_put(l, s);
		if (rc != 0) {
			goto err_rollback;
		}
	}
	if (l->fsync && t->length > old_len && fdatasync(t->fd) != 0) {
		rc = local_sys_fail(l, errmsg, errno, "concat into", target,
		                    "sync");
		goto err_rollback;
	}
	/* Commit: move every source out of sight (reversible), then drop. */
	for (moved = 0; moved < n; moved++) {
		trash_name(sources[moved], trash, sizeof(trash));
		if (renameat(l->root_fd, sources[moved], l->root_fd, trash) !=
		    0) {
			rc = local_sys_fail(l, errmsg, errno, "concat from",
			                    sources[moved], "hide");
			goto err_unhide;
		}
	}
	for (size_t i = 0; i < n; i++) {
		local_chunk_forget(l, sources[i]);
		trash_name(sources[i], trash, sizeof(trash));
		int e = unlinkat(l->root_fd, trash, 0) != 0 ? errno : 0;
		if (e == 0 && l->fsync) {
			e = local_fsync_parent(l, trash);
		}
		if (e != 0) {
			local_log(l, STRATA_LOG_WARN,
			          "concat into chunk %s: source %s was merged "
			          "but "
			          "removing %s/%s failed: %s",
			          target, sources[i], l->root, trash,
			          strerror(e));
		}
		local_remove_empty_parents(l, sources[i]);
	}
	local_count(l, "bytes_concatenated", t->length - old_len);
	goto out;

err_unhide:
	while (moved-- > 0) {
		trash_name(sources[moved], back, sizeof(back));
		if (renameat(l->root_fd, back, l->root_fd, sources[moved]) !=
		    0) {
			local_log(l, STRATA_LOG_ERROR,
			          "concat into chunk %s: could not move %s/%s "
			          "back "
			          "to %s: %s",
			          target, l->root, back, sources[moved],
			          strerror(errno));
		}
	}
err_rollback:
	if (ftruncate(t->fd, (off_t)old_end) != 0 ||
	    (l->fsync && fsync(t->fd) != 0)) {
		local_log(l, STRATA_LOG_ERROR,
		          "concat into chunk %s: could not cut it back to %llu "
		          "bytes: %s",
		          target, (unsigned long long)old_len, strerror(errno));
		t->stale = true;
	} else {
		t->length = old_len;
		t->end_pos = old_end;
		local_index_trim(t, old_len);
		local_chunk_touch(t);
	}
out:
	l->host->free(buf);
	l->host->free(w.buf);
	local_chunk_put(l, t);
	return rc;
}
