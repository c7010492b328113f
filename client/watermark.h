/* Watermarks on the client: the controller's list of a stream's
 * watermarks and a reader's time window against it. */
#ifndef CLIENT_WATERMARK_H
#define CLIENT_WATERMARK_H

#include <stddef.h>
#include <stdint.h>

#include "client/rg_state.h"
#include "strata/client.h"
#include "strata/readergroup.h"

/* Has a reader at pos[0..n) (segments of one stream, each at the offset
 * of its next event) passed w: for each, every watermark position
 * overlapping its key range is the same segment at an offset <= the
 * reader's, or an older epoch's? n == 0: false. */
bool wm_passed(const struct rg_pos *pos, size_t n,
               const struct strata_watermark *w);

/* The window of a reader at pos[0..n) among ws[0..nw) (oldest first):
 * lower = the newest passed watermark's lower time, upper = the upper
 * time of the first one after it. Neither when n == 0. */
void wm_window(const struct rg_pos *pos, size_t n,
               const struct strata_watermark *ws, size_t nw,
               struct strata_time_window *out);

#endif /* CLIENT_WATERMARK_H */
