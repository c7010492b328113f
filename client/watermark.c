/* Watermarks on the client (docs/client.md, "Watermarks"): fetching a
 * stream's watermarks from the controller (CTL_GET_WATERMARKS) and where a
 * reader stands among them. A reader has passed a watermark when each
 * segment it owns is at or beyond the watermark's position in it, or is
 * newer than the overlapping positions (the reader finished their
 * segments before it got this one); its window's lower bound is the
 * newest passed watermark's lower time (every event it reads from now on
 * was written after notes >= it), its upper bound the next watermark's
 * upper time. */
#include "client/watermark.h"

#include <stdio.h>
#include <string.h>

#include "client/client_int.h"
#include "common/alloc.h"
#include "strata/v1/controller.pb-c.h"

#define SEG_EPOCH(id) ((uint32_t)((id) >> 32))

bool wm_passed(const struct rg_pos *pos, size_t n,
               const struct strata_watermark *w)
{
	if (n == 0) {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		const struct rg_pos *o = &pos[i];
		for (size_t k = 0; k < w->n_positions; k++) {
			const struct strata_watermark_position *p =
			        &w->positions[k];
			if (!(p->low < o->high && o->low < p->high)) {
				continue;
			}
			if (p->segment_id == o->id) {
				if (p->offset > 0 &&
				    o->offset < (uint64_t)p->offset) {
					return false;
				}
			} else if (SEG_EPOCH(o->id) <=
			           SEG_EPOCH(p->segment_id)) {
				return false; /* still before that segment */
			}
		}
	}
	return true;
}

void wm_window(const struct rg_pos *pos, size_t n,
               const struct strata_watermark *ws, size_t nw,
               struct strata_time_window *out)
{
	memset(out, 0, sizeof(*out));
	if (n == 0) {
		return; /* nothing left to read: no window */
	}
	size_t i = nw;
	while (i > 0 && !wm_passed(pos, n, &ws[i - 1])) {
		i--;
	}
	if (i > 0) {
		out->has_lower = true;
		out->lower = ws[i - 1].lower_time;
	}
	if (i < nw) {
		out->has_upper = true;
		out->upper = ws[i].upper_time;
	}
}

void strata_watermarks_free(struct strata_watermark *ws, size_t n)
{
	for (size_t i = 0; ws != NULL && i < n; i++) {
		strata_free(ws[i].positions);
	}
	strata_free(ws);
}

/* Names valid and a blocking call allowed (not from a callback). */
static int check_call(struct strata_client *c, const char *scope,
                      const char *stream, const char *what, char *errmsg)
{
	int rc = client_check_stream(scope, stream, errmsg);
	return rc != 0 ? rc : client_check_blocking(c, what, errmsg);
}

int strata_stream_note_time(struct strata_client *c, const char *scope,
                            const char *stream, const uint8_t writer_id[16],
                            int64_t time, char *errmsg)
{
	int rc =
	        check_call(c, scope, stream, "strata_stream_note_time", errmsg);
	if (rc != 0) {
		return rc;
	}
	if (writer_id == NULL) {
		client_err(errmsg, "note time on %s/%s: writer_id is NULL",
		           scope, stream);
		return STRATA_EINVAL;
	}
	struct strata_stream_info *in = NULL;
	rc = strata_stream_get_info(c, scope, stream, &in, errmsg);
	if (rc != 0) {
		return rc;
	}
	size_t n = in->tail.n;
	Strata__V1__SegmentOffset *pos = strata_calloc(n + 1, sizeof(*pos));
	Strata__V1__SegmentOffset **pp = strata_calloc(n + 1, sizeof(*pp));
	if (pos == NULL || pp == NULL) {
		strata_free(pos);
		strata_free(pp);
		strata_stream_info_free(in);
		client_err(errmsg, "note time on %s/%s: out of memory", scope,
		           stream);
		return STRATA_ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		Strata__V1__SegmentOffset init =
		        STRATA__V1__SEGMENT_OFFSET__INIT;
		pos[i] = init;
		pos[i].segment_id = in->tail.positions[i].segment_id;
		pos[i].offset = in->tail.positions[i].offset;
		pp[i] = &pos[i];
	}
	strata_stream_info_free(in);
	Strata__V1__NoteTimeRequest q = STRATA__V1__NOTE_TIME_REQUEST__INIT;
	q.scope = (char *)scope;
	q.stream = (char *)stream;
	q.writer_id.data = (uint8_t *)writer_id;
	q.writer_id.len = 16;
	q.time = time;
	q.positions = pp;
	q.n_positions = n;
	char what[STRATA_NAME_MAX * 2 + 32];
	snprintf(what, sizeof(what), "note time on %s/%s", scope, stream);
	rc = client_ctl_mutate(c, STRATA__V1__CONTROLLER_METHOD__CTL_NOTE_TIME,
	                       &q.base, 0, what, errmsg);
	strata_free(pp);
	strata_free(pos);
	return rc;
}

int strata_stream_remove_time_mark(struct strata_client *c, const char *scope,
                                   const char *stream,
                                   const uint8_t writer_id[16], char *errmsg)
{
	int rc = check_call(c, scope, stream, "strata_stream_remove_time_mark",
	                    errmsg);
	if (rc != 0) {
		return rc;
	}
	if (writer_id == NULL) {
		client_err(errmsg,
		           "remove time mark on %s/%s: writer_id is NULL",
		           scope, stream);
		return STRATA_EINVAL;
	}
	Strata__V1__RemoveWriterRequest q =
	        STRATA__V1__REMOVE_WRITER_REQUEST__INIT;
	q.scope = (char *)scope;
	q.stream = (char *)stream;
	q.writer_id.data = (uint8_t *)writer_id;
	q.writer_id.len = 16;
	char what[STRATA_NAME_MAX * 2 + 40];
	snprintf(what, sizeof(what), "remove time mark on %s/%s", scope,
	         stream);
	return client_ctl_mutate(
	        c, STRATA__V1__CONTROLLER_METHOD__CTL_REMOVE_WRITER, &q.base, 0,
	        what, errmsg);
}

int strata_stream_watermarks(struct strata_client *c, const char *scope,
                             const char *stream, uint64_t after_index,
                             struct strata_watermark **out, size_t *n,
                             char *errmsg)
{
	*out = NULL;
	*n = 0;
	int rc = check_call(c, scope, stream, "strata_stream_watermarks",
	                    errmsg);
	if (rc != 0) {
		return rc;
	}
	Strata__V1__GetWatermarksRequest q =
	        STRATA__V1__GET_WATERMARKS_REQUEST__INIT;
	q.scope = (char *)scope;
	q.stream = (char *)stream;
	q.after_index = after_index;
	Strata__V1__WatermarksReply *rep = NULL;
	rc = client_ctl_query(
	        c, STRATA__V1__CONTROLLER_METHOD__CTL_GET_WATERMARKS, &q.base,
	        &strata__v1__watermarks_reply__descriptor,
	        (ProtobufCMessage **)&rep, errmsg);
	if (rc != 0) {
		return rc;
	}
	struct strata_watermark *ws =
	        strata_calloc(rep->n_watermarks + 1, sizeof(*ws));
	size_t k = 0;
	for (; ws != NULL && k < rep->n_watermarks; k++) {
		const Strata__V1__Watermark *w = rep->watermarks[k];
		ws[k].index = w->index;
		ws[k].lower_time = w->lower_time;
		ws[k].upper_time = w->upper_time;
		ws[k].created_ms = w->created_ms;
		ws[k].positions = strata_calloc(w->n_positions + 1,
		                                sizeof(*ws[k].positions));
		if (ws[k].positions == NULL) {
			break;
		}
		for (size_t i = 0; i < w->n_positions; i++) {
			const Strata__V1__WatermarkPosition *p =
			        w->positions[i];
			ws[k].positions[i] = (struct strata_watermark_position){
			        p->segment_id, p->offset, p->low, p->high};
		}
		ws[k].n_positions = w->n_positions;
	}
	size_t total = rep->n_watermarks;
	rpc_pb_free(&rep->base);
	if (ws == NULL || k < total) {
		strata_watermarks_free(ws, k + (ws != NULL));
		client_err(errmsg, "watermarks of %s/%s: out of memory", scope,
		           stream);
		return STRATA_ENOMEM;
	}
	*out = ws;
	*n = total;
	return 0;
}
