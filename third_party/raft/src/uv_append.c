#include "assert.h"
#include "byte.h"
#include "heap.h"
#include "queue.h"
#include "uv.h"
#include "uv_encoding.h"
#include "uv_writer.h"

/* The happy path for an append request is:
 *
 * - If there is a current segment and it is has enough spare capacity to hold
 *   the entries in the request, then queue the request, linking it to the
 *   current segment.
 *
 * - If there is no current segment, or it hasn't enough spare capacity to hold
 *   the entries in the request, then request a new open segment to be prepared,
 *   queue the request and link it to the newly requested segment.
 *
 * - Wait for any pending write against the current segment to complete, and
 *   also for the prepare request if we asked for a new segment. Also wait for
 *   any in progress barrier to be removed.
 *
 * - Submit a write request for the entries in this append request. The write
 *   request might contain other append requests targeted to the current segment
 *   that might have accumulated in the meantime, if we have been waiting for a
 *   segment to be prepared, or for the previous write to complete or for a
 *   barrier to be removed.
 *
 * - Wait for the write request to finish and fire the append request's
 *   callback.
 *
 * Possible failure modes are:
 *
 * - The request to prepare a new segment fails.
 * - The write request fails.
 * - The request to finalize a new segment fails to be submitted.
 *
 * In all these cases we mark the instance as errored and fire the relevant
 * callbacks.
 **/

/* STRATA PATCH (PATCHES.md #11): up to two log writes in flight per open
 * segment when writes go through KAIO (one otherwise).
 *
 * Upstream keeps one write in flight: each write rewrites the partial last
 * block of the one before (direct I/O writes whole blocks), so a second
 * write in flight could land before the first and be overwritten by it. An
 * append that arrives while a write is in flight waited for it, then for
 * its own write: about two write times per acknowledgement under load.
 *
 * Here a write whose requests arrived while another write was in flight
 * (the log is busy) ends its last block with a padding record
 * (UV__DISK_FORMAT_PADDED), so the next write starts on a fresh block and
 * can be submitted at once, while this one is in flight. A write formed
 * when the log was idle is not padded (no space is spent on a lone small
 * write): the write after it rewrites its last block, as upstream, and so
 * waits for it. Writes may complete in any order; their callbacks fire in
 * the order they were submitted, so an entry is never reported stored
 * while an earlier one is not. After a crash the open segment loader stops
 * at the first batch that is missing or torn, so a later write that did
 * reach the disk past a hole is dropped with it, as it was never
 * acknowledged. A failed write fails the writes after it in the same
 * segment and the segment takes no more writes (they would land after a
 * hole). */
#define UV__ALIVE_MAX_WRITES 2

struct uvAliveSegment;

/* One log write of an open segment. */
struct uvAliveWrite
{
    struct uvAliveSegment *segment; /* Segment written */
    struct UvWriterReq req;         /* Write request */
    struct uvSegmentBuffer buf;     /* Its data, from a block boundary */
    uv_buf_t out;                   /* The blocks submitted */
    raft_index last_index;          /* Last entry in this write */
    size_t end;                     /* Segment bytes in use after it */
    int status;                     /* Its outcome, once done */
    bool done;                      /* The I/O has completed */
};

/* An open segment being written or waiting to be written. */
struct uvAliveSegment
{
    struct uv *uv;                  /* Our writer */
    struct uvPrepare prepare;       /* Prepare segment file request */
    struct UvWriter writer;         /* Writer to perform async I/O */
    unsigned long long counter;     /* Open segment counter */
    raft_index first_index;         /* Index of the first entry written */
    raft_index pending_last_index;  /* Index of the last entry written */
    size_t size;                    /* Total number of bytes used */
    unsigned next_block;            /* Next segment block to write */
    struct uvAliveWrite writes[UV__ALIVE_MAX_WRITES]; /* Ring, submit order */
    unsigned w_head;                /* Oldest write in flight */
    unsigned n_writes;              /* Writes in flight */
    unsigned max_writes;            /* 1, or UV__ALIVE_MAX_WRITES with KAIO */
    struct uvAliveWrite *tail_from; /* Write whose last block is partial */
    size_t tail_n;                  /* Bytes of it in use, 0 if none */
    bool failed;                    /* A write failed: no more writes */
    raft_index last_index;          /* Last entry actually written */
    size_t written;                 /* Number of bytes actually written */
    queue queue;                    /* Segment queue */
    struct UvBarrier *barrier;      /* Barrier waiting on this segment */
    bool finalize;                  /* Finalize the segment after writing */
};

struct uvAppend
{
    struct raft_io_append *req;       /* User request */
    const struct raft_entry *entries; /* Entries to write */
    unsigned n;                       /* Number of entries */
    struct uvAliveSegment *segment;   /* Segment to write to */
    struct uvAliveWrite *write;       /* Write carrying it (STRATA #11) */
    bool busy;                        /* A write was in flight when it came */
    queue queue;
};

/* Space reserved per request for the padding of the write it lands in
 * (a record too big for the gap left takes one more block). */
#define uvAppendPadReserve(UV) (2 * (UV)->block_size)

static void uvAliveSegmentWriterCloseCb(struct UvWriter *writer)
{
    struct uvAliveSegment *segment = writer->data;
    struct uv *uv = segment->uv;
    unsigned i;
    for (i = 0; i < UV__ALIVE_MAX_WRITES; i++) {
        uvSegmentBufferClose(&segment->writes[i].buf);
    }
    RaftHeapFree(segment);
    uvMaybeFireCloseCb(uv);
}

/* Submit a request to close the current open segment. */
static void uvAliveSegmentFinalize(struct uvAliveSegment *s)
{
    struct uv *uv = s->uv;
    int rv;

    rv = UvFinalize(uv, s->counter, s->written, s->first_index, s->last_index);
    if (rv != 0) {
        uv->errored = true;
        /* We failed to submit the finalize request, but let's still close the
         * file handle and release the segment memory. */
    }

    QUEUE_REMOVE(&s->queue);
    UvWriterClose(&s->writer, uvAliveSegmentWriterCloseCb);
}

/* STRATA PATCH (PATCHES.md #13): a failed request's callback reads why
 * from io->errmsg, which other calls may have changed (or never set) since
 * the failure, and the server logged "io: " with nothing after it: give
 * the first failure's reason. */
static void uvAppendFailMsg(struct uv *uv)
{
    if (uv->errored_msg[0] != '\0') {
        ErrMsgPrintf(uv->io->errmsg, "%s", uv->errored_msg);
    } else if (uv->io->errmsg[0] == '\0') {
        ErrMsgPrintf(uv->io->errmsg, "%s",
                     "an earlier write, creation or close of a log "
                     "segment failed");
    }
}

/* Flush the append requests in the given queue, firing their callbacks with the
 * given status. */
static void uvAppendFinishRequestsInQueue(struct uv *uv, queue *q, int status)
{
    queue queue_copy;
    struct uvAppend *append;
    QUEUE_INIT(&queue_copy);
    while (!QUEUE_IS_EMPTY(q)) {
        queue *head;
        head = QUEUE_HEAD(q);
        append = QUEUE_DATA(head, struct uvAppend, queue);
        /* Rollback the append next index if the result was unsuccessful. */
        if (status != 0) {
            uv->append_next_index -= append->n;
        }
        QUEUE_REMOVE(head);
        QUEUE_PUSH(&queue_copy, head);
    }
    while (!QUEUE_IS_EMPTY(&queue_copy)) {
        queue *head;
        struct raft_io_append *req;
        head = QUEUE_HEAD(&queue_copy);
        append = QUEUE_DATA(head, struct uvAppend, queue);
        QUEUE_REMOVE(head);
        req = append->req;
        RaftHeapFree(append);
        if (status != 0) {
            uvAppendFailMsg(uv);
        }
        req->cb(req, status);
    }
}

/* Flush the append requests in the pending queue, firing their callbacks with
 * the given status. */
static void uvAppendFinishPendingRequests(struct uv *uv, int status)
{
    uvAppendFinishRequestsInQueue(uv, &uv->append_pending_reqs, status);
}

/* Return the segment currently being written, or NULL when no segment has been
 * written yet. */
static struct uvAliveSegment *uvGetCurrentAliveSegment(struct uv *uv)
{
    queue *head;
    if (QUEUE_IS_EMPTY(&uv->append_segments)) {
        return NULL;
    }
    head = QUEUE_HEAD(&uv->append_segments);
    return QUEUE_DATA(head, struct uvAliveSegment, queue);
}

/* Flush the append requests of the given write, at the head of the writing
 * queue, firing their callbacks with the given status. */
static void uvAppendFinishWriteRequests(struct uv *uv,
                                        struct uvAliveWrite *w,
                                        int status)
{
    queue q;
    QUEUE_INIT(&q);
    while (!QUEUE_IS_EMPTY(&uv->append_writing_reqs)) {
        queue *head = QUEUE_HEAD(&uv->append_writing_reqs);
        struct uvAppend *append = QUEUE_DATA(head, struct uvAppend, queue);
        if (append->write != w) {
            break;
        }
        QUEUE_REMOVE(head);
        QUEUE_PUSH(&q, head);
    }
    assert(!QUEUE_IS_EMPTY(&q));
    uvAppendFinishRequestsInQueue(uv, &q, status);
}

/* The slot of the segment's next write. After an unpadded write with a
 * partial last block (no write in flight then) it is that write's own slot,
 * whose buffer still holds the block to rewrite. */
static struct uvAliveWrite *uvAliveWriteNext(struct uvAliveSegment *s)
{
    if (s->tail_n > 0) {
        assert(s->n_writes == 0);
        s->w_head = (unsigned)(s->tail_from - s->writes);
        return s->tail_from;
    }
    return &s->writes[(s->w_head + s->n_writes) % UV__ALIVE_MAX_WRITES];
}

/* Start the buffer of the next write of the segment: the partial last block
 * of the write before moved to its head (upstream's retain), the format
 * version at the head of the segment, or nothing. */
static int uvAliveWriteBegin(struct uvAliveSegment *s, struct uvAliveWrite *w)
{
    if (s->tail_n > 0) {
        assert(w == s->tail_from && w->buf.n % w->buf.block_size == s->tail_n);
        if (w->buf.n > w->buf.block_size) {
            uvSegmentBufferReset(&w->buf,
                                 (unsigned)(w->buf.n / w->buf.block_size));
        }
        return 0;
    }
    w->buf.n = 0;
    if (s->next_block == 0) {
        return uvSegmentBufferFormat(&w->buf);
    }
    return 0;
}

/* Extend the write's buffer by encoding the entries in the given request
 * into it. */
static int uvAliveSegmentEncodeEntriesToWriteBuf(struct uvAliveSegment *segment,
                                                 struct uvAliveWrite *w,
                                                 struct uvAppend *append)
{
    int rv;
    assert(append->segment == segment);

    rv = uvSegmentBufferAppend(&w->buf, append->entries, append->n);
    if (rv != 0) {
        return rv;
    }

    segment->pending_last_index += append->n;

    return 0;
}

static int uvAppendMaybeStart(struct uv *uv);
static void uvAliveSegmentWriteCb(struct UvWriterReq *req, const int status)
{
    struct uvAliveWrite *w = req->data;
    struct uvAliveSegment *s = w->segment;
    struct uv *uv = s->uv;
    int rv;

    assert(uv->state != UV__CLOSED);

    assert(w->out.len % uv->block_size == 0);
    assert(w->out.len >= uv->block_size);

    w->done = true;
    w->status = status;
    if (status != 0) {
        Tracef(uv->tracer, "write: %s", uv->io->errmsg);
        uv->errored = true;
        /* STRATA PATCH (PATCHES.md #13): keep the reason. */
        if (uv->errored_msg[0] == '\0') {
            ErrMsgPrintf(uv->errored_msg, "%.250s", uv->io->errmsg);
        }
    }

    /* Fire the callbacks of the requests fulfilled, in the order the writes
     * were submitted: a write that completes before an earlier one waits
     * for it. A write after a failed one fails too: it would sit past a
     * hole in the segment. */
    while (s->n_writes > 0 && s->writes[s->w_head].done) {
        struct uvAliveWrite *h = &s->writes[s->w_head];
        int st = h->status;
        h->done = false;
        s->w_head = (s->w_head + 1) % UV__ALIVE_MAX_WRITES;
        s->n_writes--;
        if (st == 0 && s->failed) {
            st = RAFT_IOERR;
        }
        if (st != 0) {
            s->failed = true;
            s->finalize = true;
        } else {
            s->written = h->end;
            s->last_index = h->last_index;
        }
        uvAppendFinishWriteRequests(uv, h, st);
    }

    /* During the closing sequence we should have already canceled all pending
     * request. */
    if (uv->closing) {
        assert(QUEUE_IS_EMPTY(&uv->append_pending_reqs));
        if (s->n_writes == 0 && !s->writer.closing) {
            assert(s->finalize);
            uvAliveSegmentFinalize(s);
        }
        return;
    }

    /* Possibly process waiting requests. */
    if (!QUEUE_IS_EMPTY(&uv->append_pending_reqs)) {
        rv = uvAppendMaybeStart(uv);
        if (rv != 0) {
            uv->errored = true;
        }
    } else if (s->finalize && s->n_writes == 0
               && (s->failed || s->pending_last_index == s->last_index)
               && !s->writer.closing) {
        /* If there are no more append_pending_reqs or write requests in flight,
         * this segment must be finalized here in case we don't receive
         * AppendEntries RPCs anymore (could happen during a Snapshot install,
         * causing the BarrierCb to never fire), but check that the callbacks that
         * fired after completion of this write didn't already close the segment. */
        uvAliveSegmentFinalize(s);
    }
}

/* Submit a file write request for the entries encoded in the write's buffer,
 * padded to a whole block if @pad, so that the next write can start before
 * this one completes. */
static int uvAliveSegmentWrite(struct uvAliveSegment *s,
                               struct uvAliveWrite *w,
                               bool pad,
                               size_t reserved)
{
    size_t block_size = s->uv->block_size;
    unsigned first = s->next_block;
    unsigned n_blocks;
    size_t used;
    int rv;

    assert(s->counter != 0);
    assert(w->buf.n > 0);
    if (pad) {
        rv = uvSegmentBufferPad(&w->buf, &w->out, &used);
        if (rv != 0) {
            return rv;
        }
    } else {
        used = w->buf.n;
        uvSegmentBufferFinalize(&w->buf, &w->out);
    }
    w->end = first * block_size + used;
    w->last_index = s->pending_last_index;
    w->status = 0;
    w->done = false;
    rv = UvWriterSubmit(&s->writer, &w->req, &w->out, 1,
                        first * block_size, uvAliveSegmentWriteCb);
    if (rv != 0) {
        return rv;
    }
    s->n_writes++;

    /* Space: give back the padding reserved per request, count what the
     * padding took. */
    s->size -= reserved;
    s->size += w->buf.n - used;

    n_blocks = (unsigned)(w->out.len / block_size);
    if (w->buf.n % block_size != 0) {
        /* Not padded, last block partial: the next write rewrites it. */
        s->next_block = first + n_blocks - 1;
        s->tail_from = w;
        s->tail_n = w->buf.n % block_size;
    } else {
        s->next_block = first + n_blocks;
        s->tail_from = NULL;
        s->tail_n = 0;
    }
    return 0;
}

/* Start writing all pending append requests for the current segment, unless we
 * are already writing, or the segment itself has not yet been prepared or we
 * are blocked on a barrier. If there are no more requests targeted at the
 * current segment, make sure it's marked to be finalize and try with the next
 * segment. */
static int uvAppendMaybeStart(struct uv *uv)
{
    struct uvAliveSegment *segment;
    struct uvAliveWrite *w;
    struct uvAppend *append;
    unsigned n_reqs;
    bool pad;
    bool dead;
    queue *head;
    queue q;
    int rv;

    assert(!uv->closing);
    assert(!QUEUE_IS_EMPTY(&uv->append_pending_reqs));

start:
    segment = uvGetCurrentAliveSegment(uv);
    assert(segment != NULL);
    /* If the preparer isn't done yet, let's wait. */
    if (segment->counter == 0) {
        return 0;
    }

    /* If there's a blocking barrier in progress, and it's not waiting for this segment
     * to be finalized, let's wait. */
    if (uv->barrier != NULL && segment->barrier != uv->barrier && uv->barrier->blocking) {
        return 0;
    }

    /* If there's no barrier in progress and this segment is marked with a
     * barrier, it means that this was a pending barrier, which we can become
     * the current barrier now. */
    if (uv->barrier == NULL && segment->barrier != NULL) {
        uv->barrier = segment->barrier;
    }

    /* STRATA PATCH (PATCHES.md #12): after a failed log write nothing more
     * is written, in this segment or a later one. The requests waiting are
     * failed once the writes in flight have completed, so that callbacks
     * still fire in submission order. */
    dead = segment->failed || uv->errored;
    if (dead && segment->n_writes > 0) {
        return 0;
    }

    /* STRATA PATCH (PATCHES.md #11): wait for a free write slot, and for
     * the write in flight if this one must rewrite its last block. */
    if (segment->n_writes > 0 &&
        (segment->n_writes == segment->max_writes || segment->tail_n > 0)) {
        return 0;
    }
    w = uvAliveWriteNext(segment);

    /* Let's add to the write's buffer all pending requests targeted to
     * this segment. */
    QUEUE_INIT(&q);

    n_reqs = 0;
    pad = false;
    while (!QUEUE_IS_EMPTY(&uv->append_pending_reqs)) {
        head = QUEUE_HEAD(&uv->append_pending_reqs);
        append = QUEUE_DATA(head, struct uvAppend, queue);
        assert(append->segment != NULL);
        if (append->segment != segment) {
            break; /* Not targeted to this segment */
        }
        if (n_reqs == 0 && !dead) {
            rv = uvAliveWriteBegin(segment, w);
            if (rv != 0) {
                goto err;
            }
        }
        QUEUE_REMOVE(head);
        QUEUE_PUSH(&q, head);
        n_reqs++;
        pad = pad || append->busy;
        if (dead) {
            continue;
        }
        append->write = w;
        rv = uvAliveSegmentEncodeEntriesToWriteBuf(segment, w, append);
        if (rv != 0) {
            goto err;
        }
    }

    /* A segment with a failed write takes no more: fail its requests. */
    if (n_reqs > 0 && dead) {
        uvAppendFinishRequestsInQueue(uv, &q, RAFT_IOERR);
        if (uv->closing) {
            return 0;
        }
        goto start;
    }

    /* If we have no more requests for this segment, let's check if it has been
     * marked for closing, and in that case finalize it and possibly trigger a
     * write against the next segment (unless there is a truncate request, in
     * that case we need to wait for it). Otherwise it must mean we have
     * exhausted the queue of pending append requests. */
    if (n_reqs == 0) {
        if (segment->n_writes > 0) {
            return 0; /* Finalized once its writes complete */
        }
        assert(QUEUE_IS_EMPTY(&uv->append_writing_reqs));
        if (segment->finalize) {
            uvAliveSegmentFinalize(segment);
            if (!QUEUE_IS_EMPTY(&uv->append_pending_reqs)) {
                goto start;
            }
        }
        assert(QUEUE_IS_EMPTY(&uv->append_pending_reqs));
        return 0;
    }

    while (!QUEUE_IS_EMPTY(&q)) {
        head = QUEUE_HEAD(&q);
        QUEUE_REMOVE(head);
        QUEUE_PUSH(&uv->append_writing_reqs, head);
    }

    rv = uvAliveSegmentWrite(segment, w, pad && segment->max_writes > 1,
                             n_reqs * uvAppendPadReserve(uv));
    if (rv != 0) {
        goto err;
    }

    return 0;

err:
    assert(rv != 0);
    return rv;
}

/* Invoked when a newly added open segment becomes ready for writing, after the
 * associated UvPrepare request completes (either synchronously or
 * asynchronously). */
static int uvAliveSegmentReady(struct uv *uv,
                               uv_file fd,
                               uvCounter counter,
                               struct uvAliveSegment *segment)
{
    int rv;
    /* STRATA PATCH (PATCHES.md #11): two writes in flight with KAIO. */
    segment->max_writes = uv->async_io ? UV__ALIVE_MAX_WRITES : 1;
    rv = UvWriterInit(&segment->writer, uv->loop, fd, uv->direct_io,
                      uv->async_io, segment->max_writes, uv->io->errmsg);
    if (rv != 0) {
        ErrMsgWrapf(uv->io->errmsg, "setup writer for open-%llu", counter);
        return rv;
    }
    segment->counter = counter;
    return 0;
}

static void uvAliveSegmentPrepareCb(struct uvPrepare *req, int status)
{
    struct uvAliveSegment *segment = req->data;
    struct uv *uv = segment->uv;
    int rv;

    assert(segment->counter == 0);
    assert(segment->written == 0);

    /* If we have been closed, let's discard the segment. */
    if (uv->closing) {
        QUEUE_REMOVE(&segment->queue);
        assert(status == RAFT_CANCELED); /* UvPrepare cancels pending reqs */
        for (unsigned i = 0; i < UV__ALIVE_MAX_WRITES; i++) {
            uvSegmentBufferClose(&segment->writes[i].buf);
        }
        RaftHeapFree(segment);
        return;
    }

    if (status != 0) {
        rv = status;
        goto err;
    }

    assert(req->counter > 0);
    assert(req->fd >= 0);

    /* There must be pending appends that were waiting for this prepare
     * requests. */
    assert(!QUEUE_IS_EMPTY(&uv->append_pending_reqs));

    rv = uvAliveSegmentReady(uv, req->fd, req->counter, segment);
    if (rv != 0) {
        goto err;
    }

    rv = uvAppendMaybeStart(uv);
    if (rv != 0) {
        goto err;
    }

    return;

err:
    QUEUE_REMOVE(&segment->queue);
    RaftHeapFree(segment);
    uv->errored = true;
    uvAppendFinishPendingRequests(uv, rv);
}

/* Initialize a new open segment object. */
static void uvAliveSegmentInit(struct uvAliveSegment *s, struct uv *uv)
{
    unsigned i;
    s->uv = uv;
    s->prepare.data = s;
    s->writer.data = s;
    s->counter = 0;
    s->first_index = uv->append_next_index;
    s->pending_last_index = s->first_index - 1;
    s->last_index = 0;
    s->size = sizeof(uint64_t) /* Format version */;
    s->next_block = 0;
    for (i = 0; i < UV__ALIVE_MAX_WRITES; i++) {
        struct uvAliveWrite *w = &s->writes[i];
        w->segment = s;
        w->req.data = w;
        w->done = false;
        uvSegmentBufferInit(&w->buf, uv->block_size);
    }
    s->w_head = 0;
    s->n_writes = 0;
    s->max_writes = 1;
    s->tail_from = NULL;
    s->tail_n = 0;
    s->failed = false;
    s->written = 0;
    s->barrier = NULL;
    s->finalize = false;
}

/* Add a new active open segment, since the append request being submitted does
 * not fit in the last segment we scheduled writes for, or no segment had been
 * previously requested at all. */
static int uvAppendPushAliveSegment(struct uv *uv)
{
    struct uvAliveSegment *segment;
    uv_file fd;
    uvCounter counter;
    int rv;

    segment = RaftHeapMalloc(sizeof *segment);
    if (segment == NULL) {
        rv = RAFT_NOMEM;
        goto err;
    }
    uvAliveSegmentInit(segment, uv);

    QUEUE_PUSH(&uv->append_segments, &segment->queue);

    rv = UvPrepare(uv, &fd, &counter, &segment->prepare,
                   uvAliveSegmentPrepareCb);
    if (rv != 0) {
        goto err_after_alloc;
    }

    /* If we've been returned a ready prepared segment right away, start writing
     * to it immediately. */
    if (fd != -1) {
        rv = uvAliveSegmentReady(uv, fd, counter, segment);
        if (rv != 0) {
            goto err_after_prepare;
        }
    }
    return 0;

err_after_prepare:
    UvOsClose(fd);
    UvFinalize(uv, counter, 0, 0, 0);
err_after_alloc:
    QUEUE_REMOVE(&segment->queue);
    RaftHeapFree(segment);
err:
    assert(rv != 0);
    return rv;
}

/* Return the last segment that we have requested to prepare. */
static struct uvAliveSegment *uvGetLastAliveSegment(struct uv *uv)
{
    queue *tail;
    if (QUEUE_IS_EMPTY(&uv->append_segments)) {
        return NULL;
    }
    tail = QUEUE_TAIL(&uv->append_segments);
    return QUEUE_DATA(tail, struct uvAliveSegment, queue);
}

/* Return #true if the remaining capacity of the given segment is equal or
 * greater than @size. */
static bool uvAliveSegmentHasEnoughSpareCapacity(struct uvAliveSegment *s,
                                                 size_t size)
{
    return s->size + size + uvAppendPadReserve(s->uv) <= s->uv->segment_size;
}

/* Add @size bytes to the number of bytes that the segment will hold. The actual
 * write will happen when the previous write completes, if any. */
static void uvAliveSegmentReserveSegmentCapacity(struct uvAliveSegment *s,
                                                 size_t size)
{
    s->size += size + uvAppendPadReserve(s->uv); /* STRATA PATCH #11 */
}

/* Return the number of bytes needed to store the batch of entries of this
 * append request on disk. */
static size_t uvAppendSize(struct uvAppend *a)
{
    size_t size = sizeof(uint32_t) * 2; /* CRC checksums */
    unsigned i;
    size += uvSizeofBatchHeader(a->n); /* Batch header */
    for (i = 0; i < a->n; i++) {       /* Entries data */
        size += bytePad64(a->entries[i].buf.len);
    }
    return size;
}

/* Enqueue an append entries request, assigning it to the appropriate active
 * open segment. */
static int uvAppendEnqueueRequest(struct uv *uv, struct uvAppend *append)
{
    struct uvAliveSegment *segment;
    size_t size;
    bool fits;
    int rv;

    assert(append->entries != NULL);
    assert(append->n > 0);
    assert(uv->append_next_index > 0);

    size = uvAppendSize(append);

    /* If we have no segments yet, it means this is the very first append, and
     * we need to add a new segment. Otherwise we check if the last segment has
     * enough room for this batch of entries. */
    segment = uvGetLastAliveSegment(uv);
    if (segment == NULL || segment->finalize) {
        fits = false;
    } else {
        fits = uvAliveSegmentHasEnoughSpareCapacity(segment, size);
        if (!fits) {
            segment->finalize = true; /* Finalize when all writes are done */
        }
    }

    /* If there's no segment or if this batch does not fit in this segment, we
     * need to add a new one. */
    if (!fits) {
        rv = uvAppendPushAliveSegment(uv);
        if (rv != 0) {
            goto err;
        }
    }

    segment = uvGetLastAliveSegment(uv); /* Get the last added segment */
    uvAliveSegmentReserveSegmentCapacity(segment, size);

    append->segment = segment;
    QUEUE_PUSH(&uv->append_pending_reqs, &append->queue);
    uv->append_next_index += append->n;

    return 0;

err:
    assert(rv != 0);
    return rv;
}

int UvAppend(struct raft_io *io,
             struct raft_io_append *req,
             const struct raft_entry entries[],
             unsigned n,
             raft_io_append_cb cb)
{
    struct uv *uv;
    struct uvAppend *append;
    int rv;

    uv = io->impl;
    assert(!uv->closing);

    /* STRATA PATCH (PATCHES.md #12): a failed log write leaves the log on
     * disk ending before entries the caller believes appended, and upstream
     * rolled the next index back, so a later append was written under the
     * index of an entry that failed. Refuse every append until the log is
     * reloaded from disk (a restart). */
    if (uv->errored) {
        ErrMsgPrintf(uv->io->errmsg,
                     "%.200s: no more appends until restarted",
                     uv->errored_msg[0] != '\0'
                             ? uv->errored_msg
                             : "an earlier write, creation or close of a "
                               "log segment failed");
        return RAFT_IOERR;
    }

    append = RaftHeapCalloc(1, sizeof *append);
    if (append == NULL) {
        rv = RAFT_NOMEM;
        goto err;
    }
    append->req = req;
    append->entries = entries;
    append->n = n;
    /* STRATA PATCH (PATCHES.md #11): the log is busy, pad the write. */
    append->busy = !QUEUE_IS_EMPTY(&uv->append_writing_reqs);
    req->cb = cb;

    rv = uvAppendEnqueueRequest(uv, append);
    if (rv != 0) {
        goto err_after_req_alloc;
    }

    assert(append->segment != NULL);
    assert(!QUEUE_IS_EMPTY(&uv->append_pending_reqs));

    /* Try to write immediately. */
    rv = uvAppendMaybeStart(uv);
    if (rv != 0) {
        return rv;
    }

    return 0;

err_after_req_alloc:
    RaftHeapFree(append);
err:
    assert(rv != 0);
    return rv;
}

/* Finalize the current segment as soon as all its pending or inflight append
 * requests get completed. */
static void uvFinalizeCurrentAliveSegmentOnceIdle(struct uv *uv)
{
    struct uvAliveSegment *s;
    queue *head;
    bool has_pending_reqs;
    bool has_writing_reqs;

    s = uvGetCurrentAliveSegment(uv);
    if (s == NULL) {
        return;
    }

    /* Check if there are pending append requests targeted to the current
     * segment. */
    has_pending_reqs = false;
    QUEUE_FOREACH(head, &uv->append_pending_reqs)
    {
        struct uvAppend *r = QUEUE_DATA(head, struct uvAppend, queue);
        if (r->segment == s) {
            has_pending_reqs = true;
            break;
        }
    }
    has_writing_reqs = !QUEUE_IS_EMPTY(&uv->append_writing_reqs);

    /* If there is no pending append request or inflight write against the
     * current segment, we can submit a request for it to be closed
     * immediately. Otherwise, we set the finalize flag.
     *
     * TODO: is it actually possible to have pending requests with no writing
     * requests? Probably no. */
    if (!has_pending_reqs && !has_writing_reqs) {
        uvAliveSegmentFinalize(s);
    } else {
        s->finalize = true;
    }
}

bool UvBarrierReady(struct uv *uv)
{
    if (uv->barrier == NULL) {
        return true;
    }

    queue *head;
    QUEUE_FOREACH(head, &uv->append_segments)
    {
        struct uvAliveSegment *segment;
        segment = QUEUE_DATA(head, struct uvAliveSegment, queue);
        if (segment->barrier == uv->barrier) {
                return false;
        }
    }
    return true;
}

int UvBarrier(struct uv *uv,
              raft_index next_index,
              struct UvBarrier *barrier,
              UvBarrierCb cb)
{
    queue *head;

    assert(!uv->closing);

    /* The next entry will be appended at this index. */
    uv->append_next_index = next_index;

    /* Arrange for all open segments not already involved in other barriers to
     * be finalized as soon as their append requests get completed and mark them
     * as involved in this specific barrier request.  */
    QUEUE_FOREACH(head, &uv->append_segments)
    {
        struct uvAliveSegment *segment;
        segment = QUEUE_DATA(head, struct uvAliveSegment, queue);
        if (segment->barrier != NULL) {
            continue;
        }
        segment->barrier = barrier;
        if (segment == uvGetCurrentAliveSegment(uv)) {
            uvFinalizeCurrentAliveSegmentOnceIdle(uv);
            continue;
        }
        segment->finalize = true;
    }

    barrier->cb = cb;

    if (uv->barrier == NULL) {
        uv->barrier = barrier;
        /* If there's no pending append-related activity, we can fire the
         * callback immediately.
         *
         * TODO: find a way to avoid invoking this synchronously. */
        if (QUEUE_IS_EMPTY(&uv->append_segments) &&
            QUEUE_IS_EMPTY(&uv->finalize_reqs) &&
            uv->finalize_work.data == NULL) {
            barrier->cb(barrier);
        }
    }

    return 0;
}

void UvUnblock(struct uv *uv)
{
    uv->barrier = NULL;
    if (uv->closing) {
        uvMaybeFireCloseCb(uv);
        return;
    }
    if (!QUEUE_IS_EMPTY(&uv->append_pending_reqs)) {
        int rv;
        rv = uvAppendMaybeStart(uv);
        if (rv != 0) {
            uv->errored = true;
        }
    }
}

/* Fire all pending barrier requests, the barrier callback will notice that
 * we're closing and abort there. */
static void uvBarrierClose(struct uv *uv)
{
    struct UvBarrier *barrier = NULL;
    queue *head;
    assert(uv->closing);
    QUEUE_FOREACH(head, &uv->append_segments)
    {
        struct uvAliveSegment *segment;
        segment = QUEUE_DATA(head, struct uvAliveSegment, queue);
        if (segment->barrier != NULL && segment->barrier != barrier) {
            barrier = segment->barrier;
            barrier->cb(barrier);
            if (segment->barrier == uv->barrier) {
                uv->barrier = NULL;
            }
        }
        segment->barrier = NULL;
    }

    /* There might still still be a current barrier set on uv->barrier, meaning
     * that the open segment it was associated with has started to be finalized
     * and is not anymore in the append_segments queue. Let's cancel that
     * too. */
    if (uv->barrier != NULL) {
        uv->barrier->cb(uv->barrier);
        uv->barrier = NULL;
    }
}

void uvAppendClose(struct uv *uv)
{
    struct uvAliveSegment *segment;
    struct uvAliveSegment *current;
    assert(uv->closing);

    uvBarrierClose(uv);
    UvPrepareClose(uv);

    uvAppendFinishPendingRequests(uv, RAFT_CANCELED);

    current = uvGetCurrentAliveSegment(uv);
    uvFinalizeCurrentAliveSegmentOnceIdle(uv);
    /* STRATA PATCH (PATCHES.md #13): only a current segment still in the
     * queue waits for its writes. Upstream stopped at whatever segment was
     * at the head, also when the current one had just been finalized: after
     * a failed segment creation the queue can hold two segments that were
     * never written (their requests failed), and the second was never
     * finalized, so the close never completed. */
    if (uvGetCurrentAliveSegment(uv) != current) {
        current = NULL;
    }

    /* Also finalize the segments that we didn't write at all and are just
     * sitting in the append_segments queue waiting for writes against the
     * current segment to complete. */
    while (!QUEUE_IS_EMPTY(&uv->append_segments)) {
        segment = uvGetLastAliveSegment(uv);
        assert(segment != NULL);
        if (segment == current) {
            break; /* We reached the head of the queue */
        }
        assert(segment->written == 0);
        uvAliveSegmentFinalize(segment);
    }
}
